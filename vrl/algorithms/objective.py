"""The RL objective assembled from :class:`AlgorithmConfig`: the two calls a trainer step makes.

1. :func:`shape_rewards` — sequence rewards (B,) → rewards used for advantages: DAPO overlong shaping and,
   with ``kl_as=reward``, the summed per-token KL penalty.
2. :func:`actor_loss` — per micro-batch: policy loss + ``kl_coef`` KL loss (``kl_as=loss``) −
   ``entropy_coef`` entropy bonus, all aggregated with the configured mode.

Keeping the branching here keeps the trainer loop free of algorithm switches.
"""

from __future__ import annotations

from torch import Tensor

from vrl.algorithms.aggregation import aggregate_loss
from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.kl import kl_loss, kl_penalty
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
) -> Tensor:
    """Rewards (B,) after overlong shaping and (``kl_as=reward``) KL penalty; log-probs/mask (B, T)."""
    out = rewards.float()
    if cfg.overlong_buffer_len:
        out = out + overlong_penalty(
            response_lengths, max_response_length, cfg.overlong_buffer_len, cfg.overlong_penalty_factor
        ).to(out.device)
    if cfg.kl_as == "reward" and cfg.uses_reference:
        if logp is None or ref_logp is None or mask is None:
            raise ValueError("kl_as=reward needs logp, ref_logp and mask")
        out = out - kl_penalty(logp, ref_logp, mask, cfg.kl, cfg.kl_coef).sum(-1)
    return out


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
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Total actor loss and metrics. ``logp``, ``old_logp``, ``ref_logp``, ``entropy``, ``mask``: (B, T);
    ``advantages`` (B,) or (B, T); ``offpolicy_mask`` (B,) or (B, T) marks
    offline tokens shaped with ``offpolicy_gamma`` (the trainer's ``mix.gamma``). ``num_tokens`` / ``num_seqs``: global
    denominators when the batch is split into micro-batches (see aggregation)."""
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
        loss_agg_mode=cfg.loss_agg_mode,
        offpolicy_mask=offpolicy_mask,
        offpolicy_gamma=offpolicy_gamma,
        **agg,
    )
    if cfg.kl_as == "loss" and cfg.uses_reference:
        if ref_logp is None:
            raise ValueError(f"algorithm.kl={cfg.kl} as a loss needs ref_logp")
        kl = kl_loss(logp, ref_logp, mask, cfg.kl, cfg.loss_agg_mode, **agg)
        loss = loss + cfg.kl_coef * kl
        metrics["kl_loss"] = kl.item()
    if cfg.entropy_coef > 0 and entropy is None:
        raise ValueError("algorithm.entropy_coef > 0 needs the token entropy")
    if entropy is not None:
        ent = aggregate_loss(entropy, mask, cfg.loss_agg_mode, **agg)
        if cfg.entropy_coef > 0:
            loss = loss - cfg.entropy_coef * ent
        metrics["entropy"] = ent.item()
    metrics["loss"] = loss.item()
    return loss, metrics
