"""Bytes a training engine holds in allocated tensors, counted from the tensors themselves.

A memory planner is only trustworthy if it can be checked against what an engine really allocates:
:meth:`~vrl.engines.base.TrainingEngine.memory_breakdown` reports these counts and tests compare the
planner's formulas with them. Counting storages rather than ``numel × element_size`` of each tensor
matters twice: views (a parameter inside Megatron's contiguous buffer, a distributed optimizer's shard of
it) must not be counted again, and the padding of such buffers is allocated memory too.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.distributed.tensor import DTensor

#: the components of :meth:`TrainingEngine.memory_breakdown`, in this order
COMPONENTS = ("params", "grads", "optimizer", "main_weights")


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of ``tensor`` (the local shard of a DTensor, else the tensor)."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


class StorageCounter:
    """Sums the bytes of distinct storages; a storage counted once is never counted again.

    Feed the components in order of ownership (parameters first): a later component that only views an
    earlier one's storage (fp32 main weights that are the parameters themselves) adds nothing.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, int]] = set()

    def add(self, tensors: Iterable[torch.Tensor | None]) -> int:
        """Bytes of the storages behind ``tensors`` not counted before (``None`` entries are skipped)."""
        total = 0
        for tensor in tensors:
            if tensor is None:
                continue
            storage = local(tensor).untyped_storage()
            if storage.nbytes() == 0:
                continue
            key = (str(storage.device), storage.data_ptr())
            if key in self._seen:
                continue
            self._seen.add(key)
            total += storage.nbytes()
        return total


def state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every tensor of a torch optimizer's per-parameter state (AdamW: step, exp_avg, exp_avg_sq)."""
    return [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]


def gradient_bytes(params: Iterable[torch.nn.Parameter]) -> int:
    """Bytes of the gradients backward allocates for ``params`` (local shards, the parameters' dtype):
    what an engine that frees gradients after each step holds during an update."""
    return sum(local(p).numel() * local(p).element_size() for p in params if p.requires_grad)
