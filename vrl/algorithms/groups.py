"""Per-group statistics over a flat batch, for arbitrary (non-contiguous, uneven) group ids.

Rollouts of one prompt share a group id. After dynamic-sampling filters or mixing offline samples, groups
are neither contiguous nor equally sized, so statistics are computed by scatter over a dense group index
instead of reshaping to ``(num_groups, group_size)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Groups:
    """Dense view of ``group_ids``: ``index`` (B,) in ``[0, G)`` and ``sizes`` (G,)."""

    index: Tensor
    sizes: Tensor

    @classmethod
    def from_ids(cls, group_ids: Tensor | Sequence[int]) -> Groups:
        """``group_ids``: integer tensor (B,) of arbitrary ids (a list of ints is accepted)."""
        group_ids = torch.as_tensor(group_ids)
        if group_ids.dim() != 1:
            raise ValueError(f"group_ids must be 1-D (B,), got shape {tuple(group_ids.shape)}")
        if group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
            raise ValueError(f"group_ids must be an integer tensor, got {group_ids.dtype}")
        _, index, sizes = torch.unique(group_ids, return_inverse=True, return_counts=True)
        return cls(index=index, sizes=sizes)

    @property
    def num_groups(self) -> int:
        return int(self.sizes.numel())

    def check(self, values: Tensor, what: str = "rewards") -> None:
        if values.shape != self.index.shape:
            raise ValueError(
                f"{what} must have shape {tuple(self.index.shape)} like group_ids, got {tuple(values.shape)}"
            )

    def sum(self, values: Tensor) -> Tensor:
        """(B,) → per-group sum (G,)."""
        out = torch.zeros(self.num_groups, dtype=values.dtype, device=values.device)
        return out.index_add(0, self.index, values)

    def mean(self, values: Tensor) -> Tensor:
        """(B,) → per-group mean (G,)."""
        return self.sum(values) / self.sizes.to(values.dtype)

    def std(self, values: Tensor, unbiased: bool = True) -> Tensor:
        """(B,) → per-group standard deviation (G,); 0 for groups too small for the estimator.

        Two-pass (centre, then square): no catastrophic cancellation for large rewards with small spread.
        """
        centred = values - self.mean(values)[self.index]
        dof = self.sizes.to(values.dtype) - (1.0 if unbiased else 0.0)
        var = self.sum(centred * centred) / dof.clamp(min=1.0)
        return torch.where(dof > 0, var, torch.zeros_like(var)).sqrt()

    def is_constant(self, values: Tensor) -> Tensor:
        """(B,) → (G,) bool: every member of the group has the same value (singletons included)."""
        empty = values.new_empty(self.num_groups)
        hi = empty.scatter_reduce(0, self.index, values, reduce="amax", include_self=False)
        lo = empty.scatter_reduce(0, self.index, values, reduce="amin", include_self=False)
        return hi == lo

    def broadcast(self, per_group: Tensor) -> Tensor:
        """(G,) → (B,): each sample gets its group's value."""
        return per_group[self.index]
