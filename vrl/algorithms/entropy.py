"""Token entropy of the policy distribution, for the entropy bonus and as a collapse diagnostic.

Logits of a video-LM are (B, T, V) with V ~ 150k: a float32 softmax of a 4 x 4096 batch alone is ~10 GB.
:func:`entropy_from_logits` therefore works on row chunks, upcasting one chunk at a time, and under
autograd recomputes each chunk's softmax in backward (activation checkpointing) instead of keeping every
chunk's probabilities alive until the backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def _entropy_rows(logits: Tensor) -> Tensor:
    """(N, V) → (N,) float32: ``H = logsumexp(z) - sum softmax(z) * z``."""
    z = logits.float()
    lse = torch.logsumexp(z, dim=-1)
    return lse - (torch.softmax(z, dim=-1) * z).sum(-1)


def entropy_from_logits(logits: Tensor, chunk_size: int = 1024) -> Tensor:
    """Entropy of ``softmax(logits)`` over the last dim: (..., V) → (...) float32.

    ``chunk_size`` rows (flattened leading dims) are processed at a time; the result does not depend on
    it. Gradients flow to ``logits`` when they require grad.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    lead = logits.shape[:-1]
    flat = logits.reshape(-1, logits.shape[-1])
    recompute = torch.is_grad_enabled() and flat.requires_grad
    parts = []
    for chunk in flat.split(chunk_size, dim=0):
        if recompute:
            parts.append(checkpoint(_entropy_rows, chunk, use_reentrant=False))
        else:
            parts.append(_entropy_rows(chunk))
    out = torch.cat(parts) if parts else flat.new_zeros(0, dtype=torch.float32)
    return out.reshape(lead)


def entropy_from_logprobs(logprobs: Tensor) -> Tensor:
    """Entropy from a full normalised log-distribution: (..., V) → (...), ``-sum exp(lp) * lp``.

    ``-inf`` entries (zero-probability tokens) contribute 0, not NaN.
    """
    p = logprobs.exp()
    # select before multiplying: 0 * -inf is NaN in the forward and in the backward pass
    safe = torch.where(p > 0, logprobs, torch.zeros_like(logprobs))
    return -(p * safe).sum(-1)
