"""Clipped policy-gradient loss: PPO/GRPO clip with DAPO clip-higher, dual clip, GSPO sequence ratios
and LUFFY policy shaping for off-policy (offline) tokens.

Per valid on-policy token, with importance ratio ``r`` and advantage ``A``::

    l = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))       # asymmetric clip (clip_high > clip_low:
                                                                 # DAPO clip-higher, room for rare tokens)
    l = min(l, -A clip_c)        if A < 0 and clip_c > 1         # dual clip: bounds the loss when a
                                                                 # negative-advantage token's r explodes

Clipped tokens (and dual-clipped ones) have zero gradient. The ratio is either

- ``token``: ``r_t = exp(logp_t - old_logp_t)``, or
- ``sequence`` (GSPO): ``s = exp(mean_t(logp_t - old_logp_t))`` over the row's valid on-policy tokens,
  broadcast as ``r_t = s.detach() * exp(logp_t - logp_t.detach())``. Its value is ``s`` on every token and
  ``∂r_t/∂logp_t = s``, so with ``seq_mean_token_mean`` aggregation the gradient is exactly GSPO's
  ``-A s mean_t ∇logp_t`` (GSPO clip ranges are ~1e-3, not 0.2).

Off-policy tokens (``offpolicy_mask``, e.g. an offline expert response mixed into a group) have no
behaviour log-prob worth trusting: they use ``l = -A f(p)`` with ``p = exp(logp_t)`` the current
probability and ``f(p) = p / (p + γ)`` (LUFFY policy shaping), unclipped. ``f'(p) = γ / (p + γ)^2``
up-weights low-probability tokens, which plain ``p`` would ignore. Their ``old_logp`` is never read.

Log-ratios are clamped to ``[-20, 20]`` before ``exp`` so a stale or corrupt old log-prob cannot overflow;
a token beyond the clamp gets no gradient (it is far outside any clip range anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vrl.algorithms.aggregation import aggregate_loss

RATIO_LEVELS = ("token", "sequence")
LOG_RATIO_CLAMP = 20.0


@dataclass
class ClippedSurrogate:
    """Per-token loss (B, T) and the bool masks (B, T) of which clip branch was active."""

    loss: Tensor
    clipped: Tensor
    clipped_low: Tensor
    clipped_high: Tensor
    dual_clipped: Tensor


def clipped_surrogate(
    ratio: Tensor, advantages: Tensor, clip_low: float, clip_high: float, clip_c: float | None = None
) -> ClippedSurrogate:
    """PPO clip with asymmetric range and optional dual clip; ``ratio``, ``advantages`` (B, T)."""
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    neg = advantages < 0
    dual = torch.zeros_like(neg)
    if clip_c:
        bound = -advantages * clip_c
        dual = neg & (ratio > clip_c)
        loss = torch.where(neg, torch.minimum(loss, bound), loss)
    return ClippedSurrogate(
        loss=loss,
        clipped=clipped > unclipped,
        clipped_low=neg & (ratio < 1.0 - clip_low),
        clipped_high=(advantages > 0) & (ratio > 1.0 + clip_high),
        dual_clipped=dual,
    )


def shaped_offpolicy_loss(logp: Tensor, advantages: Tensor, gamma: float) -> Tensor:
    """LUFFY policy shaping ``-A * p / (p + γ)`` with ``p = exp(logp)``; (B, T) → (B, T)."""
    p = logp.exp()
    return -advantages * p / (p + gamma)


def importance_ratio(logp: Tensor, old_logp: Tensor, mask: Tensor, level: str) -> Tensor:
    """Ratio (B, T) at ``level`` in :data:`RATIO_LEVELS`; ``mask`` (B, T) bool selects tokens that count
    towards the sequence mean (see module docstring for the GSPO stop-gradient form)."""
    log_ratio = (logp - old_logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    if level == "token":
        return log_ratio.exp()
    if level == "sequence":
        zero = torch.zeros_like(log_ratio)
        seq = torch.where(mask, log_ratio, zero).sum(-1) / mask.sum(-1).clamp(min=1)
        seq = seq.detach().clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        return torch.exp(logp - logp.detach() + seq[:, None])
    raise ValueError(f"Unknown ratio_level '{level}'. Known: {', '.join(RATIO_LEVELS)}.")


def _token_mask(sel: Tensor | None, like: Tensor, what: str) -> Tensor:
    """(B,) or (B, T) selector → (B, T) bool; None → all False."""
    if sel is None:
        return torch.zeros_like(like, dtype=torch.bool)
    sel = sel.bool()
    if sel.dim() == 1:
        sel = sel[:, None]
    if sel.dim() != 2 or sel.shape[0] != like.shape[0] or sel.shape[1] not in (1, like.shape[1]):
        raise ValueError(f"{what} must be (B,) or (B, T) = {tuple(like.shape)}, got {tuple(sel.shape)}")
    return sel.expand_as(like)


def _check_shapes(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    if logp.dim() != 2 or old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(
            "logp, old_logp and mask must all be (B, T); got "
            f"{tuple(logp.shape)}, {tuple(old_logp.shape)}, {tuple(mask.shape)}"
        )
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    batch, length = logp.shape
    if advantages.dim() != 2 or advantages.shape[0] != batch or advantages.shape[1] not in (1, length):
        raise ValueError(
            f"advantages must be (B,) or (B, T) = {(batch, length)}, got {tuple(advantages.shape)}"
        )
    return advantages.detach().to(logp.dtype).expand_as(logp)


def _masked_mean(x: Tensor, m: Tensor) -> float:
    n = int(m.sum())
    return float(torch.where(m, x, torch.zeros_like(x)).sum() / n) if n else 0.0


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    clip_c: float | None = None,
    ratio_level: str = "token",
    loss_agg_mode: str = "token_mean",
    offpolicy_mask: Tensor | None = None,
    offpolicy_gamma: float = 0.1,
    token_sum_norm: float = 1.0,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Policy-gradient loss and its diagnostics.

    Shapes: ``logp`` (current policy) and ``old_logp`` (behaviour policy) sampled-token log-probs (B, T);
    ``advantages`` (B,) or (B, T); ``mask`` (B, T) valid response tokens; ``offpolicy_mask`` (B,) or (B, T).
    ``clip_c`` None or 0 disables dual clip, otherwise it must be > 1. Aggregation arguments are those of
    :func:`vrl.algorithms.aggregation.aggregate_loss`.

    Returns ``(loss, metrics)``; metrics are over valid on-policy tokens unless named ``offpolicy_*``:
    ``pg_loss``, ``pg_clipfrac`` (either bound active), ``pg_clipfrac_low`` / ``pg_clipfrac_high``
    (ratio outside the range on the side that clips for that advantage sign), ``pg_clipfrac_dual``,
    ``approx_kl`` (k1, mean of ``old_logp - logp``), ``approx_kl_k3``, ``ratio_mean``, ``ratio_max``,
    ``offpolicy_frac`` and ``offpolicy_prob_mean``.
    """
    if not 0.0 <= clip_low < 1.0 or clip_high < 0.0:
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}")
    if clip_c and clip_c <= 1.0:
        raise ValueError(f"dual clip clip_c must be > 1 (or 0/None to disable), got {clip_c}")
    if offpolicy_gamma <= 0.0:
        raise ValueError(f"offpolicy_gamma must be > 0, got {offpolicy_gamma}")
    adv = _check_shapes(logp, old_logp, advantages, mask)
    valid = mask.bool()
    off = _token_mask(offpolicy_mask, logp, "offpolicy_mask") & valid
    on = valid & ~off
    # Off-policy and padding tokens take a neutral old log-prob: theirs may be garbage (NaN, 0) and a NaN
    # would poison the gradient through torch.where.
    old_logp = torch.where(on, old_logp.detach(), logp.detach())

    ratio = importance_ratio(logp, old_logp, on, ratio_level)
    surrogate = clipped_surrogate(ratio, adv, clip_low, clip_high, clip_c)
    loss_mat = surrogate.loss
    if off.any():
        loss_mat = torch.where(off, shaped_offpolicy_loss(logp, adv, offpolicy_gamma), loss_mat)
    loss = aggregate_loss(
        loss_mat,
        valid,
        loss_agg_mode,
        token_sum_norm=token_sum_norm,
        num_tokens=num_tokens,
        num_seqs=num_seqs,
    )
    with torch.no_grad():
        log_r = (logp - old_logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        metrics = {
            "pg_loss": loss.item(),
            "pg_clipfrac": _masked_mean(surrogate.clipped.float(), on),
            "pg_clipfrac_low": _masked_mean(surrogate.clipped_low.float(), on),
            "pg_clipfrac_high": _masked_mean(surrogate.clipped_high.float(), on),
            "pg_clipfrac_dual": _masked_mean(surrogate.dual_clipped.float(), on),
            "approx_kl": _masked_mean(-log_r, on),
            "approx_kl_k3": _masked_mean(torch.expm1(log_r) - log_r, on),
            "ratio_mean": _masked_mean(ratio, on),
            "ratio_max": float(ratio[on].max()) if on.any() else 0.0,
            "offpolicy_frac": float(off.sum() / valid.sum().clamp(min=1)),
            "offpolicy_prob_mean": _masked_mean(logp.exp(), off),
        }
    return loss, metrics
