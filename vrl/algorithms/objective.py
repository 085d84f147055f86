"""The RL objective assembled from :class:`AlgorithmConfig`: the two calls a trainer step makes.

1. :func:`shape_rewards` — sequence rewards (B,) → rewards used for advantages: DAPO overlong shaping and,
   with ``kl_as=reward``, the summed per-token KL penalty (for outcome estimators; token-level ones get it
   per token from :func:`token_kl_rewards`).
2. :func:`actor_loss` — per micro-batch: policy loss (``policy_loss`` mode) + ``kl_coef`` KL loss
   (``kl_as=loss``) − ``entropy_coef`` entropy bonus, all aggregated with the configured mode.

Both take ``kl_coef`` from the caller when a KL controller adapts it (:mod:`vrl.algorithms.kl_control`);
otherwise ``cfg.kl_coef``. Keeping the branching here keeps the trainer loop free of algorithm switches.
"""

from __future__ import annotations

from torch import Tensor

from vrl.algorithms.aggregation import aggregate_loss
from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.kl import kl_estimate, kl_penalty
from vrl.algorithms.policy_loss import policy_loss
from vrl.algorithms.sampling import overlong_penalty


def shape_rewards(
    cfg: AlgorithmConfig,
    rewards: Tensor,
    response_lengths: Tensor,
    max_response_length: int,
    *,
    logp: Tensor | None = None,
    ref_logp: Tensor | None = None,
    mask: Tensor | None = None,
    kl_coef: float | None = None,
    include_kl: bool = True,
) -> Tensor:
    """Rewards (B,) after overlong shaping and (``kl_as=reward``, ``include_kl``) the summed KL penalty;
    log-probs/mask (B, T). ``include_kl=False`` leaves the KL to :func:`token_kl_rewards`."""
    out = rewards.float()
    if cfg.overlong_buffer_len:
        out = out + overlong_penalty(
            response_lengths, max_response_length, cfg.overlong_buffer_len, cfg.overlong_penalty_factor
        ).to(out.device)
    if include_kl:
        penalty = token_kl_rewards(cfg, logp, ref_logp, mask, kl_coef)
        if penalty is not None:
            out = out + penalty.sum(-1)
    return out


def token_kl_rewards(
    cfg: AlgorithmConfig,
    logp: Tensor | None,
    ref_logp: Tensor | None,
    mask: Tensor | None,
    kl_coef: float | None = None,
) -> Tensor | None:
    """Per-token reward ``-kl_coef * KL`` (B, T), 0 on padding, with ``kl_as=reward``; None otherwise."""
    if not (cfg.kl_as == "reward" and cfg.uses_reference):
        return None
    if logp is None or ref_logp is None or mask is None:
        raise ValueError("kl_as=reward needs logp, ref_logp and mask")
    return -kl_penalty(logp, ref_logp, mask, cfg.kl, cfg.kl_coef if kl_coef is None else kl_coef)


def actor_loss(
    cfg: AlgorithmConfig,
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    ref_logp: Tensor | None = None,
    entropy: Tensor | None = None,
    offpolicy_mask: Tensor | None = None,
    offpolicy_gamma: float = 0.1,
    token_weights: Tensor | None = None,
    kl_coef: float | None = None,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Total actor loss and metrics. ``logp``, ``old_logp``, ``ref_logp``, ``entropy``, ``mask``: (B, T);
    ``advantages`` (B,) or (B, T); ``offpolicy_mask`` (B,) or (B, T) marks offline tokens shaped with
    ``offpolicy_gamma`` (the trainer's ``mix.gamma``); ``token_weights`` (B, T) rollout-correction weights
    of the policy-gradient term; ``kl_coef`` overrides ``cfg.kl_coef`` (a KL controller's value).
    ``num_tokens`` / ``num_seqs``: global denominators when the batch is split into micro-batches.

    With a reference (``cfg.uses_reference``) the metric ``kl`` is the KL estimate at the current policy,
    aggregated like the loss over this micro-batch alone (local denominators), in both ``kl_as`` modes: what
    an adaptive KL controller reads. ``kl_loss`` (``kl_as=loss``) is the term added, global denominators."""
    agg = {"token_sum_norm": cfg.token_sum_norm, "num_tokens": num_tokens, "num_seqs": num_seqs}
    loss, metrics = policy_loss(
        logp,
        old_logp,
        advantages,
        mask,
        clip_low=cfg.clip_low,
        clip_high=cfg.clip_high,
        clip_c=cfg.clip_c or None,
        ratio_level=cfg.ratio_level,
        loss_mode=cfg.policy_loss,
        loss_agg_mode=cfg.loss_agg_mode,
        offpolicy_mask=offpolicy_mask,
        offpolicy_gamma=offpolicy_gamma,
        token_weights=token_weights,
        **agg,
    )
    coef = cfg.kl_coef if kl_coef is None else kl_coef
    if cfg.uses_reference and (cfg.kl_as == "loss" or ref_logp is not None):
        if ref_logp is None:
            raise ValueError(f"algorithm.kl={cfg.kl} as a loss needs ref_logp")
        estimate = kl_estimate(logp, ref_logp.detach(), cfg.kl)
        if cfg.kl_as == "loss":
            kl = aggregate_loss(estimate, mask, cfg.loss_agg_mode, **agg)
            loss = loss + coef * kl
            metrics["kl_loss"] = kl.item()
        # this micro-batch's own mean (the engines average metrics over micro-batches), in both kl_as modes
        local = aggregate_loss(estimate.detach(), mask, cfg.loss_agg_mode, token_sum_norm=cfg.token_sum_norm)
        metrics["kl"] = local.item()
        metrics["kl_coef"] = coef
    if cfg.entropy_coef > 0 and entropy is None:
        raise ValueError("algorithm.entropy_coef > 0 needs the token entropy")
    if entropy is not None:
        ent = aggregate_loss(entropy, mask, cfg.loss_agg_mode, **agg)
        if cfg.entropy_coef > 0:
            loss = loss - cfg.entropy_coef * ent
        metrics["entropy"] = ent.item()
    metrics["loss"] = loss.item()
    return loss, metrics
