"""Reduce a per-token loss matrix (B, T) to a scalar: the choice decides how length weights a sample.

Modes (``m`` the 0/1 response mask, ``l`` the per-token loss, ``S`` the sequences with >= 1 valid token):

- ``token_mean``: ``sum(l * m) / sum(m)`` — every token weighs the same, so long responses weigh more
  (DAPO's token-level loss; the default).
- ``seq_mean_token_mean``: ``mean_{i in S} [ sum_t(l_it m_it) / sum_t(m_it) ]`` — every sequence weighs
  the same whatever its length (original GRPO; GSPO).
- ``seq_mean_token_sum``: ``mean_{i in S} [ sum_t(l_it m_it) / token_sum_norm ]`` — a sequence's token
  losses are summed and divided by one *constant* normaliser shared by the whole run, so no per-length
  normalisation biases the gradient (Dr.GRPO; set ``token_sum_norm`` to the generation budget,
  ``max_response_length``, to keep the loss scale comparable to the means; 1 is the plain sum).

Rows with no valid token (padding rows) are ignored. For gradient accumulation over micro-batches pass the
global denominators ``num_tokens`` (token_mean) or ``num_seqs`` (seq_* modes), so the micro-batch losses
add up to the loss of the whole batch instead of a mean of means.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vrl.algorithms.registry import Registry

AggregateFn = Callable[..., Tensor]

_MODES: Registry[AggregateFn] = Registry("loss aggregation mode")


def loss_agg_modes() -> list[str]:
    return _MODES.names()


def _masked(loss_mat: Tensor, mask: Tensor) -> Tensor:
    # where(), not multiply: a masked-out inf/NaN must not leak into the sum.
    return torch.where(mask.bool(), loss_mat, torch.zeros_like(loss_mat))


def _seq_denominator(mask: Tensor, num_seqs: float | None) -> Tensor | float:
    if num_seqs is not None:
        return num_seqs
    return (mask.sum(-1) > 0).sum().clamp(min=1)


@_MODES.register("token_mean")
def _token_mean(loss_mat: Tensor, mask: Tensor, num_tokens: float | None = None, **_: object) -> Tensor:
    denom = mask.sum().clamp(min=1) if num_tokens is None else num_tokens
    return _masked(loss_mat, mask).sum() / denom


@_MODES.register("seq_mean_token_mean")
def _seq_mean_token_mean(
    loss_mat: Tensor, mask: Tensor, num_seqs: float | None = None, **_: object
) -> Tensor:
    per_seq = _masked(loss_mat, mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.sum() / _seq_denominator(mask, num_seqs)


@_MODES.register("seq_mean_token_sum")
def _seq_mean_token_sum(
    loss_mat: Tensor, mask: Tensor, num_seqs: float | None = None, token_sum_norm: float = 1.0, **_: object
) -> Tensor:
    per_seq = _masked(loss_mat, mask).sum(-1) / token_sum_norm
    return per_seq.sum() / _seq_denominator(mask, num_seqs)


def aggregate_loss(
    loss_mat: Tensor,
    mask: Tensor,
    mode: str,
    *,
    token_sum_norm: float = 1.0,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> Tensor:
    """Scalar loss from ``loss_mat`` (B, T) over the valid tokens ``mask`` (B, T) (bool or 0/1).

    ``mode`` is one of :func:`loss_agg_modes` (see the module docstring for the formulas);
    ``token_sum_norm`` is the constant normaliser of ``seq_mean_token_sum``; ``num_tokens`` / ``num_seqs``
    override the local denominators with global ones for gradient accumulation.
    """
    if loss_mat.shape != mask.shape or loss_mat.dim() != 2:
        raise ValueError(
            f"loss_mat and mask must both be (B, T), got {tuple(loss_mat.shape)} and {tuple(mask.shape)}"
        )
    if token_sum_norm <= 0:
        raise ValueError(f"token_sum_norm must be > 0, got {token_sum_norm}")
    mask = mask.to(loss_mat.dtype)
    return _MODES.get(mode)(
        loss_mat, mask, token_sum_norm=token_sum_norm, num_tokens=num_tokens, num_seqs=num_seqs
    )
