"""Token log-probs and entropy from vocab-parallel logits, with gradients, without gathering the vocabulary.

Each tensor-parallel rank holds the logits of its vocabulary slice ``[start, start + V/tp)``. The
log-partition function, the target logit and the entropy's ``sum p·z`` are sums over the vocabulary, so
each is a local sum followed by an all-reduce whose backward is the identity (Megatron's
``reduce_from_tensor_model_parallel_region``): every rank computes the same loss and backpropagates into
its own slice. The max used for stability is a detached all-reduce (softmax is shift invariant).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _reduce(x: torch.Tensor, group) -> torch.Tensor:
    if group is None or dist.get_world_size(group) == 1:
        return x
    from megatron.core.tensor_parallel.mappings import reduce_from_tensor_model_parallel_region

    return reduce_from_tensor_model_parallel_region(x, group=group)


def vocab_parallel_logprobs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    vocab_start: int,
    group=None,
    *,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``logits`` (..., V_local) float32, ``targets`` (...) global token ids → (logp (...), entropy (...) or None)."""
    local_vocab = logits.shape[-1]
    with torch.no_grad():
        peak = logits.max(dim=-1).values
        if group is not None and dist.get_world_size(group) > 1:
            dist.all_reduce(peak, op=dist.ReduceOp.MAX, group=group)
    shifted = logits - peak[..., None]
    log_z = _reduce(shifted.exp().sum(dim=-1), group).log()
    local = targets - vocab_start
    inside = (local >= 0) & (local < local_vocab)
    picked = shifted.gather(-1, local.clamp(0, local_vocab - 1)[..., None]).squeeze(-1)
    logp = _reduce(torch.where(inside, picked, torch.zeros_like(picked)), group) - log_z
    entropy = None
    if with_entropy:
        probs = torch.exp(shifted - log_z[..., None])
        entropy = log_z - _reduce((probs * shifted).sum(dim=-1), group)
    return logp, entropy
