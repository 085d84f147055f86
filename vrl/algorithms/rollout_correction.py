"""Rollout correction: importance weights for the mismatch between the rollout engine and the trainer.

The rollout engine (vLLM: other kernels, bf16) samples from ``π_rollout``, a slightly different
distribution than the trainer's ``π_train`` for the same weights, so the policy gradient computed on its
samples is biased. Per sampled token, with ``ρ = π_train / π_rollout = exp(logp_train - logp_rollout)``
(the log-ratio clamped to ±20 before ``exp``) and the cap ``C``:

- ``none``: ``w = 1``.
- ``tis`` (truncated importance sampling; TRL's ``token_truncate``, verl's token-level IS):
  ``w = min(ρ, C)`` — bounded variance at the price of a small bias where ``ρ > C``.
- ``mis`` (masked importance sampling; TRL's ``token_mask``): ``w = ρ`` if ``ρ <= C`` else 0 — a token
  whose ratio exceeds the cap is dropped from the gradient instead of truncated.

The weights are detached and multiply the per-token policy-gradient term
(:func:`vrl.algorithms.policy_loss.policy_loss` ``token_weights``); they are 0 on padding. A weight of 0
removes a token's gradient but the token still counts in the loss's token denominator.

Diagnostics (:func:`rollout_correction_metrics`, over valid tokens): the mean and max of ``ρ``, the
fraction of tokens with ``ρ > C``, and KL(π_rollout ‖ π_train) estimated on the sampled tokens (they were
drawn from π_rollout): ``k1 = mean(logp_rollout - logp_train)`` (unbiased, can be negative on a batch) and
``k3 = mean(ρ - 1 - log ρ)`` (unbiased, >= 0, lower variance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vrl.algorithms.registry import Registry

LOG_RATIO_CLAMP = 20.0

WeightFn = Callable[[Tensor, float], Tensor]
"""``fn(ratio (B, T), cap) -> weights (B, T)``."""

_MODES: Registry[WeightFn] = Registry("rollout correction")


@_MODES.register("none")
def _none(ratio: Tensor, cap: float) -> Tensor:
    return torch.ones_like(ratio)


@_MODES.register("tis")
def _tis(ratio: Tensor, cap: float) -> Tensor:
    return ratio.clamp(max=cap)


@_MODES.register("mis")
def _mis(ratio: Tensor, cap: float) -> Tensor:
    return torch.where(ratio <= cap, ratio, torch.zeros_like(ratio))


def rollout_correction_modes() -> list[str]:
    return _MODES.names()


def _check(logp_train: Tensor, logp_rollout: Tensor, mask: Tensor) -> Tensor:
    if logp_train.dim() != 2 or logp_rollout.shape != logp_train.shape or mask.shape != logp_train.shape:
        raise ValueError(
            "logp_train, logp_rollout and mask must all be (B, T); got "
            f"{tuple(logp_train.shape)}, {tuple(logp_rollout.shape)}, {tuple(mask.shape)}"
        )
    return mask.bool()


def is_ratio(logp_train: Tensor, logp_rollout: Tensor, mask: Tensor) -> Tensor:
    """``ρ = exp(clamp(logp_train - logp_rollout, ±20))`` (B, T), detached, 1 on padding."""
    valid = _check(logp_train, logp_rollout, mask)
    with torch.no_grad():
        log_r = torch.where(valid, logp_train - logp_rollout, torch.zeros_like(logp_train))
        return log_r.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp()


def rollout_correction_weights(
    logp_train: Tensor, logp_rollout: Tensor, mask: Tensor, mode: str, cap: float
) -> Tensor:
    """Per-token weights (B, T) for ``mode`` in :func:`rollout_correction_modes`; detached, 0 on padding.

    ``logp_train``: the trainer's log-probs of the sampled tokens under the behaviour weights (B, T);
    ``logp_rollout``: the rollout engine's log-probs of the same tokens (B, T); ``mask`` (B, T) valid tokens;
    ``cap`` the bound ``C`` (>= 1; 2 is TRL's default)."""
    if cap < 1.0:
        raise ValueError(f"the rollout correction cap must be >= 1, got {cap}")
    fn = _MODES.get(mode)
    ratio = is_ratio(logp_train, logp_rollout, mask)
    weights = fn(ratio, cap)
    return torch.where(mask.bool(), weights, torch.zeros_like(weights))


def rollout_correction_metrics(
    logp_train: Tensor, logp_rollout: Tensor, mask: Tensor, cap: float
) -> dict[str, float]:
    """``is_ratio_mean``, ``is_ratio_max``, ``is_capped_frac`` (``ρ > cap``), ``kl_k1`` and ``kl_k3`` (both
    estimate KL(π_rollout ‖ π_train)) over the valid tokens; all 0 when there is none. Shapes (B, T)."""
    valid = _check(logp_train, logp_rollout, mask)
    n = int(valid.sum())
    if n == 0:
        return {k: 0.0 for k in ("is_ratio_mean", "is_ratio_max", "is_capped_frac", "kl_k1", "kl_k3")}
    with torch.no_grad():
        log_r = (logp_train - logp_rollout)[valid].double().clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        ratio = log_r.exp()
        return {
            "is_ratio_mean": float(ratio.mean()),
            "is_ratio_max": float(ratio.max()),
            "is_capped_frac": float((ratio > cap).double().mean()),
            "kl_k1": float((-log_r).mean()),
            "kl_k3": float((torch.expm1(log_r) - log_r).mean()),
        }
