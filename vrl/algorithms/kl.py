"""Per-token KL(π_θ ‖ π_ref) estimators from sampled-token log-probs, as a loss or a reward penalty.

With ``d = log π_ref(y_t) - log π_θ(y_t)`` for the sampled token (y ~ π_θ):

- ``none``: 0 (no reference model needed).
- ``k1``: ``-d = log π_θ - log π_ref`` — unbiased, high variance, can be negative per token.
- ``k3`` (low-variance): ``exp(d) - d - 1`` — unbiased, always >= 0, low variance (Schulman's k3, the
  GRPO KL). ``d`` is clamped to ``[-20, 20]`` before ``exp`` and the estimate to ``[0, 10]``: one token
  whose reference probability is astronomically larger than the policy's would otherwise produce an
  ``exp`` overflow and a gradient that swamps the batch. Clamped tokens get no gradient.
- ``mse`` (k2): ``0.5 * d**2`` — biased but smooth; its gradient is the log-ratio itself.
- ``abs``: ``|d|`` — not a KL estimator (biased, not smooth at 0), a symmetric penalty on the log-ratio;
  its gradient is ``sign(log π_θ - log π_ref)`` (verl/TRL's ``abs``).
- ``full``: the exact per-position KL ``sum_v π_θ(v) (log π_θ(v) - log π_ref(v))`` over the whole
  vocabulary. It takes full log-distributions ``(B, T, V)`` instead of sampled-token log-probs and returns
  (B, T); zero-probability policy entries contribute 0. verl names it and raises NotImplementedError;
  here the function exists, but the training engines return sampled-token log-probs only, so the trainer
  refuses ``algorithm.kl=full`` (a (B, T, V) reference tensor at V ~ 150k is ~0.6 MB per token in fp32).

As a loss, :func:`kl_loss` aggregates the estimate like the policy loss and the caller adds
``kl_coef * kl_loss``. As a reward penalty, :func:`kl_penalty` gives the detached per-token
``kl_coef * kl`` that is subtracted from the rewards before advantages are computed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vrl.algorithms.aggregation import aggregate_loss
from vrl.algorithms.registry import Registry

KlFn = Callable[[Tensor, Tensor], Tensor]

_KL: Registry[KlFn] = Registry("KL estimator")

LOG_RATIO_CLAMP = 20.0
K3_MAX = 10.0


def kl_kinds() -> list[str]:
    return _KL.names()


@_KL.register("none")
def _none(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return torch.zeros_like(logp)


@_KL.register("k1")
def _k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return logp - ref_logp


@_KL.register("k3")
def _k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    d = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return (torch.exp(d) - d - 1.0).clamp(0.0, K3_MAX)


@_KL.register("mse")
def _mse(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return 0.5 * (logp - ref_logp).square()


@_KL.register("abs")
def _abs(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return (logp - ref_logp).abs()


@_KL.register("full")
def _full(logp: Tensor, ref_logp: Tensor) -> Tensor:
    if logp.dim() < 3:
        raise ValueError(
            "kl=full needs full log-distributions (B, T, V) of policy and reference, got "
            f"{tuple(logp.shape)}: sampled-token log-probs allow k1, k3, mse or abs only"
        )
    p = logp.exp()
    # select before multiplying: 0 * -inf is NaN (a token the policy never emits, or the reference rules out)
    diff = torch.where(p > 0, logp - ref_logp, torch.zeros_like(logp))
    return (p * diff).sum(-1)


#: kinds computed from the sampled tokens' log-probs alone (what the training engines return)
SAMPLED_TOKEN_KINDS = ("none", "k1", "k3", "mse", "abs")


def kl_estimate(logp: Tensor, ref_logp: Tensor, kind: str) -> Tensor:
    """Per-token KL estimate; ``logp``, ``ref_logp`` (B, T) sampled-token log-probs → (B, T).

    ``full`` takes full log-distributions (B, T, V) → (B, T)."""
    if logp.shape != ref_logp.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and ref_logp {tuple(ref_logp.shape)} differ in shape")
    return _KL.get(kind)(logp, ref_logp)


def kl_loss(
    logp: Tensor,
    ref_logp: Tensor,
    mask: Tensor,
    kind: str,
    loss_agg_mode: str = "token_mean",
    **agg_kwargs: float | None,
) -> Tensor:
    """Scalar KL loss term (differentiable in ``logp``); shapes (B, T). Extra kwargs go to aggregation."""
    return aggregate_loss(kl_estimate(logp, ref_logp.detach(), kind), mask, loss_agg_mode, **agg_kwargs)


def kl_penalty(logp: Tensor, ref_logp: Tensor, mask: Tensor, kind: str, coef: float) -> Tensor:
    """Per-token reward penalty ``coef * kl`` (B, T), 0 on padding, detached (rewards carry no gradient).

    For outcome rewards subtract ``kl_penalty(...).sum(-1)`` (B,) from the sequence reward.
    """
    with torch.no_grad():
        kl = kl_estimate(logp, ref_logp, kind)
        return torch.where(mask.bool(), coef * kl, torch.zeros_like(kl))
