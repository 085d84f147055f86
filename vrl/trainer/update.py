"""The update phase of a step: advantages, log-probs, and optimizer steps over mini-batches.

Rollout correction (``algorithm.rollout_correction``): the loss weighs each sampled token's policy-gradient
term by a function of ``ρ = π_train / π_rollout``, where ``π_train`` is the trainer's old (behaviour) log-prob
and ``π_rollout`` the rollout engine's log-prob of the same token (``Trajectory.rollout_logp``). Offline
trajectories and tokens without a rollout log-prob get weight 1 and stay out of the ``rollout_corr/*``
metrics.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from vrl.algorithms.advantages import compute_advantages
from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.kl_control import KLController, build_kl_controller
from vrl.algorithms.objective import actor_loss, shape_rewards, token_kl_rewards
from vrl.algorithms.rollout_correction import rollout_correction_metrics, rollout_correction_weights
from vrl.batch import MicroBatch, Trajectory
from vrl.distributed import DistContext
from vrl.engines.base import LossFn, TrainingEngine
from vrl.trainer.mixing import MixConfig

#: reward components whose per-group normalisation gdpo sums (the weighted total is `overall`)
GDPO_KEYS = ("accuracy", "format")


def assign_advantages(
    trajs: list[Trajectory], cfg: AlgorithmConfig, max_response_length: int, kl_coef: float | None = None
) -> dict[str, float]:
    """Advantages from (shaped) rewards, written into each trajectory: a float for outcome estimators, an
    (R,) tensor for token-level ones (REINFORCE++, ReMax). Returns metrics (``reward/greedy_baseline``
    under ReMax). ``kl_coef``: the KL controller's current value (default ``cfg.kl_coef``).

    Groups never span ranks, so this is local to the rank.
    """
    if not trajs:
        return {}
    group_ids = torch.tensor([t.group for t in trajs])
    lengths = torch.tensor([t.response_len for t in trajs])
    overall = torch.tensor([t.rewards.get("overall", 0.0) for t in trajs])
    width = max(int(lengths.max()), 1)
    mask = torch.arange(width)[None] < lengths[:, None]
    logp = ref = None
    if cfg.kl_as == "reward" and cfg.uses_reference:
        logp = _pad([t.old_logp for t in trajs], width)
        ref = _pad([t.ref_logp for t in trajs], width)
    if cfg.token_level_advantages:
        shaped = shape_rewards(cfg, overall, lengths, max_response_length, include_kl=False)
        token_rewards = token_kl_rewards(cfg, logp, ref, mask, kl_coef)
        baselines, metrics = _greedy_baselines(trajs, cfg, max_response_length)
        adv = compute_advantages(
            cfg.advantage,
            shaped,
            group_ids,
            cfg.eps,
            mask=mask,
            token_rewards=token_rewards,
            baselines=baselines,
            gamma=cfg.gamma,
        )
        for t, row in zip(trajs, adv):
            t.advantage = row[: t.response_len].clone()
        return metrics
    shaped = shape_rewards(
        cfg, overall, lengths, max_response_length, logp=logp, ref_logp=ref, mask=mask, kl_coef=kl_coef
    )
    if cfg.advantage == "gdpo":
        rewards = {k: torch.tensor([t.rewards.get(k, 0.0) for t in trajs]) for k in GDPO_KEYS}
        rewards["shaping"] = shaped - overall  # overlong / KL penalties as their own normalised component
        adv = compute_advantages(cfg.advantage, rewards, group_ids, cfg.eps)
    else:
        adv = compute_advantages(cfg.advantage, shaped, group_ids, cfg.eps)
    for t, a in zip(trajs, adv.tolist()):
        t.advantage = float(a)
    return {}


def _greedy_baselines(
    trajs: list[Trajectory], cfg: AlgorithmConfig, max_response_length: int
) -> tuple[torch.Tensor | None, dict[str, float]]:
    """ReMax: the shaped reward (B,) of each trajectory's greedy response (no KL: it has no log-probs)."""
    if not cfg.needs_greedy_baseline:
        return None, {}
    missing = sum(t.baseline is None for t in trajs)
    if missing:
        raise ValueError(
            f"advantage={cfg.advantage}: {missing} trajectories have no greedy baseline response "
            "(collect(..., greedy_baseline=True) generates them)"
        )
    greedy = [t.baseline for t in trajs if t.baseline is not None]
    shaped = shape_rewards(
        cfg,
        torch.tensor([g.rewards.get("overall", 0.0) for g in greedy]),
        torch.tensor([g.response_len for g in greedy]),
        max_response_length,
        include_kl=False,
    )
    unique = {id(g): float(v) for g, v in zip(greedy, shaped.tolist())}
    return shaped, {"reward/greedy_baseline": sum(unique.values()) / len(unique)}


def _pad(rows: list[torch.Tensor | None], width: int) -> torch.Tensor:
    out = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        assert r is not None
        out[i, : r.numel()] = r
    return out


def make_loss_fn(
    cfg: AlgorithmConfig,
    mix: MixConfig,
    trajs: list[Trajectory],
    dist_ctx: DistContext,
    on_policy: bool = False,
    kl_coef: float | None = None,
) -> LossFn:
    """A loss for one mini-batch, normalised by its global token/sequence counts (collective).

    ``on_policy``: the batch gets a single optimizer step, so the policy being updated is the behaviour
    policy and its detached log-probs serve as the old ones (no separate pass); otherwise every
    trajectory must carry ``old_logp``. ``kl_coef``: the KL controller's value (default ``cfg.kl_coef``)."""
    # every rank of a data-parallel replica holds the same trajectories: count each replica once
    replicas = dist_ctx.world_size // dist_ctx.dp_size
    tokens = dist_ctx.all_reduce_sum(float(sum(t.response_len for t in trajs))) / replicas
    seqs = dist_ctx.all_reduce_sum(float(len(trajs))) / replicas
    # engines average gradients over data-parallel replicas: scale the global denominators by 1/dp
    num_tokens = max(tokens, 1.0) / dist_ctx.dp_size
    num_seqs = max(seqs, 1.0) / dist_ctx.dp_size

    def loss_fn(
        logp: torch.Tensor, entropy: torch.Tensor | None, mb: MicroBatch
    ) -> tuple[torch.Tensor, dict]:
        if on_policy:
            old_logp = logp.detach()
        elif mb.old_logp is None:
            raise ValueError("old log-probs missing: compute them before an off-policy (multi-update) step")
        else:
            old_logp = mb.old_logp.to(logp.device)
        mask = mb.token_mask.to(logp.device)
        weights, corr_metrics = _rollout_correction(cfg, old_logp, mb, mask)
        loss, metrics = actor_loss(
            cfg,
            logp,
            old_logp,
            mb.advantages.to(logp.device),
            mask,
            ref_logp=mb.ref_logp.to(logp.device) if mb.ref_logp is not None else None,
            entropy=entropy,
            offpolicy_mask=mb.offpolicy.to(logp.device) if mix.policy_shaping else None,
            offpolicy_gamma=mix.gamma,
            token_weights=weights,
            kl_coef=kl_coef,
            num_tokens=num_tokens,
            num_seqs=num_seqs,
        )
        return loss, {**metrics, **corr_metrics}

    return loss_fn


#: metrics of the rollout correction, named ``rollout_corr/<key>`` in the step's metrics
CORRECTION_METRICS = {
    "is_ratio_mean": "is_ratio_mean",
    "is_ratio_max": "is_ratio_max",
    "is_capped_frac": "capped_frac",
    "kl_k1": "kl_k1",
    "kl_k3": "kl",
}


def _rollout_correction(
    cfg: AlgorithmConfig, old_logp: torch.Tensor, mb: MicroBatch, mask: torch.Tensor
) -> tuple[torch.Tensor | None, dict[str, float]]:
    """Token weights (B, T) of ``cfg.rollout_correction`` (None for ``none``) and the mismatch metrics, from
    the trainer's old log-probs and the rollout engine's (``mb.rollout_logp``, NaN where a row has none).

    A micro-batch without any rollout log-prob (offline rows only, or an engine that returns none) reports
    no metrics, so the step's means cover the tokens that have them."""
    if mb.rollout_logp is None:
        return None, {}
    rollout_logp = mb.rollout_logp.to(old_logp.device)
    valid = mask.bool() & ~torch.isnan(rollout_logp) & ~mb.offpolicy.to(mask.device)[:, None]
    if not valid.any():
        return None, {}
    rollout_logp = torch.where(valid, rollout_logp, old_logp.detach())
    raw = rollout_correction_metrics(old_logp.detach(), rollout_logp, valid, cfg.rollout_correction_cap)
    metrics = {f"rollout_corr/{name}": raw[key] for key, name in CORRECTION_METRICS.items()}
    if cfg.rollout_correction == "none":
        return None, metrics
    weights = rollout_correction_weights(
        old_logp.detach(), rollout_logp, valid, cfg.rollout_correction, cfg.rollout_correction_cap
    )
    return torch.where(valid, weights, torch.ones_like(weights)), metrics


def optimize(
    engine: TrainingEngine,
    trajs: list[Trajectory],
    cfg: AlgorithmConfig,
    mix: MixConfig,
    dist_ctx: DistContext,
    *,
    num_updates: int,
    ppo_epochs: int,
    on_policy: bool = False,
    kl_coef: float | None = None,
) -> dict[str, float]:
    """``ppo_epochs`` passes of ``num_updates`` optimizer steps over this rank's trajectories.

    ``on_policy`` (one optimizer step in all, no separate log-prob pass): the loss uses the update's own
    detached log-probs as the old ones, and the update passes compute the token entropy for the
    ``actor/entropy`` metric even when the loss has no entropy term."""
    if on_policy and num_updates * ppo_epochs != 1:
        raise ValueError(f"on_policy needs a single optimizer step, got {num_updates} x {ppo_epochs} epochs")
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    per = -(-len(trajs) // num_updates)
    for _ in range(ppo_epochs):
        for u in range(num_updates):
            chunk = trajs[u * per : (u + 1) * per] or trajs[-1:]
            loss_fn = make_loss_fn(cfg, mix, chunk, dist_ctx, on_policy, kl_coef)
            metrics = engine.train_step(chunk, loss_fn, need_entropy=on_policy or cfg.entropy_coef > 0)
            for k, v in metrics.items():
                sums[k] += v
                counts[k] += 1
    # loss metrics go under actor/; those already named by their group (rollout_corr/...) keep their name
    return {(k if "/" in k else f"actor/{k}"): v / counts[k] for k, v in sums.items()}


def make_kl_controller(cfg: AlgorithmConfig) -> KLController:
    """The ``algorithm.kl_ctrl`` controller, starting at ``algorithm.kl_coef`` (trainer state: checkpointed)."""
    return build_kl_controller(cfg.kl_ctrl, cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)


def step_kl_controller(ctrl: KLController, metrics: dict[str, float], num_samples: int) -> None:
    """After a step: feed the measured KL (``actor/kl``) over ``num_samples`` trajectories to ``ctrl``.

    ``metrics`` must be the step's metrics averaged over ranks, so every rank adapts identically; the
    coefficient the step used is ``actor/kl_coef``. A step without a KL term changes nothing.
    """
    if "actor/kl" in metrics:
        ctrl.update(metrics["actor/kl"], num_samples)
