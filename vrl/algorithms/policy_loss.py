"""Policy-gradient losses, selected by name: PPO/GRPO clip with DAPO clip-higher and dual clip, GSPO
(sequence ratios, also in its token form), CISPO, and LUFFY policy shaping for off-policy (offline) tokens.

Shapes throughout: ``logp`` / ``old_logp`` sampled-token log-probs (B, T), ``advantages`` (B,) or (B, T),
``mask`` (B, T). Per valid on-policy token, with importance ratio ``r`` and advantage ``A``:

- ``vanilla`` (PPO/GRPO; verl's name)::

      l = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))     # asymmetric clip (clip_high > clip_low:
                                                                 # DAPO clip-higher, room for rare tokens)
      l = min(l, -A clip_c)       if A < 0 and clip_c > 1        # dual clip: bounds the loss when a
                                                                 # negative-advantage token's r explodes

  Clipped tokens (and dual-clipped ones) have zero gradient. ``ratio_level`` picks ``r``:

  - ``token``: ``r_t = exp(logp_t - old_logp_t)``;
  - ``sequence`` (GSPO): ``r_t = s = exp(mean_t(logp_t - old_logp_t))`` over the row's valid on-policy
    tokens, the same value on every token, differentiated through the mean (``∂s/∂logp_t = s / |y|``).
    With seq_mean_token_mean aggregation the gradient is GSPO's ``-A s mean_t ∇logp_t`` (GSPO clip ranges
    are ~1e-3, not 0.2).

- ``gspo_token`` (GSPO-token, the GSPO paper's token form; EasyR1's name): ``r_t = sg[s] · exp(logp_t -
  sg[logp_t])``, same value ``s`` but ``∂r_t/∂logp_t = s`` on its own token only, clipped as ``vanilla``
  (dual clip included). With one advantage per sequence it equals GSPO in value and gradient, whatever the
  aggregation; with per-token advantages ``A_t`` (REINFORCE++ with γ < 1, a per-token KL reward) each token
  keeps its own ``A_t`` where GSPO would mix them through the mean. ``ratio_level`` is not read.

- ``cispo`` (MiniMax-M1; verl's name): ``l = -sg[clip(r_t, 1 - clip_low, 1 + clip_high)] · A ·
  exp(logp_t - sg[logp_t])``: the importance weight is clipped and detached, so *every* token keeps a
  gradient ``-w A ∇logp_t`` (PPO's clip drops clipped tokens' gradients entirely). The value is ``-w A``
  (verl writes ``-w A logp``: same gradient). Token ratios only, no dual clip; MiniMax leaves the lower
  side unbounded (``clip_low`` close to 1 does that here).

Off-policy tokens (``offpolicy_mask``, e.g. an offline expert response mixed into a group) have no
behaviour log-prob worth trusting: they use ``l = -A f(p)`` with ``p = exp(logp_t)`` the current
probability and ``f(p) = p / (p + γ)`` (LUFFY policy shaping), unclipped, whatever the loss mode.
``f'(p) = γ / (p + γ)^2`` up-weights low-probability tokens, which plain ``p`` would ignore. Their
``old_logp`` is never read.

Log-ratios are clamped to ``[-20, 20]`` before ``exp`` so a stale or corrupt old log-prob cannot overflow;
beyond the clamp no gradient flows. For sequence ratios the clamp applies to the sequence log-ratio,
*after* the mean of the unclamped token log-ratios (clamping tokens first would change ``s`` itself).

``token_weights`` (B, T), optional, multiplies the on-policy per-token loss before aggregation: the
rollout-correction weights of :mod:`vrl.algorithms.rollout_correction` (detached; a weight of 0 removes the
token's gradient but it still counts in the token denominator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from vrl.algorithms.aggregation import aggregate_loss
from vrl.algorithms.registry import Registry

RATIO_LEVELS = ("token", "sequence")
LOG_RATIO_CLAMP = 20.0


@dataclass
class ClippedSurrogate:
    """Per-token loss (B, T), the ratio (B, T) it used, and the bool masks (B, T) of the active clip branch."""

    loss: Tensor
    clipped: Tensor
    clipped_low: Tensor
    clipped_high: Tensor
    dual_clipped: Tensor
    ratio: Tensor | None = None


@dataclass(frozen=True)
class ClipParams:
    """The clip settings every loss mode receives (a mode reads the ones it uses)."""

    clip_low: float = 0.2
    clip_high: float = 0.28
    clip_c: float | None = None
    ratio_level: str = "token"


PolicyLossFn = Callable[[Tensor, Tensor, Tensor, Tensor, ClipParams], ClippedSurrogate]
"""``fn(logp, old_logp, advantages, on_mask, params) -> ClippedSurrogate``; all tensors (B, T)."""

_LOSSES: Registry[PolicyLossFn] = Registry("policy loss")


def policy_loss_modes() -> list[str]:
    return _LOSSES.names()


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
        ratio=ratio,
    )


def shaped_offpolicy_loss(logp: Tensor, advantages: Tensor, gamma: float) -> Tensor:
    """LUFFY policy shaping ``-A * p / (p + γ)`` with ``p = exp(logp)``; (B, T) → (B, T)."""
    p = logp.exp()
    return -advantages * p / (p + gamma)


def _sequence_log_ratio(logp: Tensor, old_logp: Tensor, mask: Tensor) -> Tensor:
    """(B,): mean of the *unclamped* token log-ratios over the row's ``mask`` tokens (0 for an empty row)."""
    log_r = torch.where(mask, logp - old_logp, torch.zeros_like(logp))
    return log_r.sum(-1) / mask.sum(-1).clamp(min=1)


def importance_ratio(logp: Tensor, old_logp: Tensor, mask: Tensor, level: str) -> Tensor:
    """Ratio (B, T) at ``level`` in :data:`RATIO_LEVELS`; ``mask`` (B, T) bool selects the tokens of the
    sequence mean. The log-ratio is clamped to ±``LOG_RATIO_CLAMP`` last, so beyond it no gradient flows."""
    if level == "token":
        log_ratio = logp - old_logp
    elif level == "sequence":
        log_ratio = _sequence_log_ratio(logp, old_logp, mask)[:, None].expand_as(logp)
    else:
        raise ValueError(f"Unknown ratio_level '{level}'. Known: {', '.join(RATIO_LEVELS)}.")
    return log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp()


def sequence_token_ratio(logp: Tensor, old_logp: Tensor, mask: Tensor) -> Tensor:
    """GSPO-token ratio (B, T): value ``s`` of the row, gradient ``s`` on each token's own log-prob.

    ``log r_t = sg[mean log-ratio] + logp_t - sg[logp_t]``, clamped after the sum: the clamp's gradient is
    0 outside ±``LOG_RATIO_CLAMP``, so a sequence beyond it gets no gradient at all."""
    seq = _sequence_log_ratio(logp, old_logp, mask).detach()
    log_ratio = seq[:, None] + logp - logp.detach()
    return log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp()


@_LOSSES.register("vanilla")
def vanilla_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, on: Tensor, p: ClipParams) -> ClippedSurrogate:
    """PPO/GRPO clipped surrogate (dual clip optional) at ``p.ratio_level`` (token or GSPO sequence)."""
    ratio = importance_ratio(logp, old_logp, on, p.ratio_level)
    return clipped_surrogate(ratio, adv, p.clip_low, p.clip_high, p.clip_c)


@_LOSSES.register("gspo_token")
def gspo_token_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, on: Tensor, p: ClipParams
) -> ClippedSurrogate:
    """GSPO-token: the clipped surrogate on :func:`sequence_token_ratio` (per-token advantages allowed)."""
    ratio = sequence_token_ratio(logp, old_logp, on)
    return clipped_surrogate(ratio, adv, p.clip_low, p.clip_high, p.clip_c)


@_LOSSES.register("cispo")
def cispo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, on: Tensor, p: ClipParams) -> ClippedSurrogate:
    """CISPO: ``-sg[clip(r)] A exp(logp - sg[logp])`` per token; no token loses its gradient."""
    ratio = importance_ratio(logp, old_logp, on, "token")
    weight = ratio.detach().clamp(1.0 - p.clip_low, 1.0 + p.clip_high)
    loss = -adv * weight * torch.exp(logp - logp.detach())
    low = ratio < 1.0 - p.clip_low
    high = ratio > 1.0 + p.clip_high
    return ClippedSurrogate(
        loss=loss,
        clipped=low | high,
        clipped_low=low,
        clipped_high=high,
        dual_clipped=torch.zeros_like(low),
        ratio=ratio,
    )


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
    loss_mode: str = "vanilla",
    loss_agg_mode: str = "token_mean",
    offpolicy_mask: Tensor | None = None,
    offpolicy_gamma: float = 0.1,
    token_weights: Tensor | None = None,
    token_sum_norm: float = 1.0,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Policy-gradient loss and its diagnostics.

    Shapes: ``logp`` (current policy) and ``old_logp`` (behaviour policy) sampled-token log-probs (B, T);
    ``advantages`` (B,) or (B, T); ``mask`` (B, T) valid response tokens; ``offpolicy_mask`` (B,) or (B, T);
    ``token_weights`` (B, T) or None. ``loss_mode`` is one of :func:`policy_loss_modes` (module docstring);
    ``clip_c`` None or 0 disables dual clip, otherwise it must be > 1. Aggregation arguments are those of
    :func:`vrl.algorithms.aggregation.aggregate_loss`.

    Returns ``(loss, metrics)``; metrics are over valid on-policy tokens unless named ``offpolicy_*``:
    ``pg_loss``, ``pg_clipfrac`` (a clip bound active), ``pg_clipfrac_low`` / ``pg_clipfrac_high``
    (ratio outside the range on the side that clips for that advantage sign; for ``cispo`` the side alone),
    ``pg_clipfrac_dual``, ``approx_kl`` (k1, mean of ``old_logp - logp``), ``approx_kl_k3``,
    ``ratio_mean``, ``ratio_max``, ``offpolicy_frac`` and ``offpolicy_prob_mean``.
    """
    if not 0.0 <= clip_low < 1.0 or clip_high < 0.0:
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}")
    if clip_c and clip_c <= 1.0:
        raise ValueError(f"dual clip clip_c must be > 1 (or 0/None to disable), got {clip_c}")
    if offpolicy_gamma <= 0.0:
        raise ValueError(f"offpolicy_gamma must be > 0, got {offpolicy_gamma}")
    if ratio_level not in RATIO_LEVELS:
        raise ValueError(f"Unknown ratio_level '{ratio_level}'. Known: {', '.join(RATIO_LEVELS)}.")
    loss_fn = _LOSSES.get(loss_mode)
    adv = _check_shapes(logp, old_logp, advantages, mask)
    valid = mask.bool()
    off = _token_mask(offpolicy_mask, logp, "offpolicy_mask") & valid
    on = valid & ~off
    # Off-policy and padding tokens take a neutral old log-prob: theirs may be garbage (NaN, 0) and a NaN
    # would poison the gradient through torch.where.
    old_logp = torch.where(on, old_logp.detach(), logp.detach())

    surrogate = loss_fn(logp, old_logp, adv, on, ClipParams(clip_low, clip_high, clip_c or None, ratio_level))
    assert surrogate.ratio is not None, f"policy loss '{loss_mode}' returned no ratio"
    loss_mat = surrogate.loss
    if token_weights is not None:
        if token_weights.shape != logp.shape:
            raise ValueError(
                f"token_weights must be (B, T) = {tuple(logp.shape)}, got {tuple(token_weights.shape)}"
            )
        loss_mat = loss_mat * token_weights.detach().to(loss_mat.dtype)
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
        ratio = surrogate.ratio
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
