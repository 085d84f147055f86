"""DAPO dynamic sampling (drop zero-signal groups, refill from more rollouts) and soft overlong shaping.

A group whose rewards are all equal has zero advantage under every group-relative estimator, so it adds
nothing but dilution to the batch. DAPO drops such groups and keeps generating until the batch holds the
requested number of informative groups. :func:`filter_groups` is the pure test;
:class:`GroupAccumulator` is the refill bookkeeping across generation rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor

from vrl.algorithms.groups import Groups
from vrl.log import get_logger

logger = get_logger(__name__)

T = TypeVar("T")


def filter_groups(rewards: Tensor, group_ids: Tensor) -> Tensor:
    """Keep mask (B,) bool: True for samples whose group has >= 2 members and not all-equal rewards.

    ``rewards`` (B,) is the score the advantage is computed from; ``group_ids`` (B,) arbitrary ids.
    Singleton groups are dropped too: they have no group baseline.
    """
    groups = Groups.from_ids(group_ids)
    rewards = torch.as_tensor(rewards, device=groups.index.device)
    groups.check(rewards, "rewards")
    informative = ~groups.is_constant(rewards) & (groups.sizes >= 2)
    return groups.broadcast(informative)


class GroupAccumulator(Generic[T]):
    """Collects informative groups over generation rounds until ``num_groups`` are kept (DAPO refill).

    Each round: ``add(samples, rewards, group_ids)`` with one entry of ``samples`` per response (any
    object: an index, a dict of tensors...). Group ids only need to be unique within a round. Loop while
    ``not acc.done``; then ``take()`` returns exactly ``num_groups`` whole groups in arrival order (fewer
    if ``max_rounds`` ran out) with fresh contiguous group ids. ``max_rounds`` 0 means unlimited.
    """

    def __init__(self, num_groups: int, max_rounds: int = 0) -> None:
        if num_groups < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        if max_rounds < 0:
            raise ValueError(f"max_rounds must be >= 0 (0 = unlimited), got {max_rounds}")
        self.num_groups = num_groups
        self.max_rounds = max_rounds
        self.rounds = 0
        self.groups_dropped = 0
        self._groups: list[list[T]] = []

    @property
    def full(self) -> bool:
        return len(self._groups) >= self.num_groups

    @property
    def exhausted(self) -> bool:
        return bool(self.max_rounds) and self.rounds >= self.max_rounds and not self.full

    @property
    def done(self) -> bool:
        return self.full or self.exhausted

    def add(self, samples: Sequence[T], rewards: Tensor, group_ids: Tensor) -> Tensor:
        """Add one generation round; returns its keep mask (B,) bool (see :func:`filter_groups`)."""
        if self.done:
            raise RuntimeError("GroupAccumulator.add called after done: call take()")
        if len(samples) != rewards.shape[0]:
            raise ValueError(f"{len(samples)} samples but {rewards.shape[0]} rewards")
        keep = filter_groups(rewards, group_ids)
        groups = Groups.from_ids(group_ids)
        members: dict[int, list[T]] = {}
        first_seen: list[int] = []
        for i, (g, k) in enumerate(zip(groups.index.tolist(), keep.tolist())):
            if g not in members:
                members[g] = []
                first_seen.append(g)
            if k:
                members[g].append(samples[i])
        kept = [members[g] for g in first_seen if members[g]]
        self._groups.extend(kept)
        self.groups_dropped += groups.num_groups - len(kept)
        self.rounds += 1
        return keep

    def stats(self) -> dict[str, Any]:
        """``rounds``, ``groups_kept`` (used), ``groups_dropped`` (all-equal), ``groups_surplus`` (unused)."""
        return {
            "rounds": self.rounds,
            "groups_kept": min(len(self._groups), self.num_groups),
            "groups_dropped": self.groups_dropped,
            "groups_surplus": max(len(self._groups) - self.num_groups, 0),
        }

    def take(self) -> tuple[list[T], Tensor]:
        """The first ``num_groups`` kept groups, flattened: ``(samples, group_ids (N,) in [0, G))``."""
        if self.exhausted:
            logger.warning(
                "dynamic sampling: %d/%d informative groups after %d rounds (max_rounds); training on fewer",
                len(self._groups),
                self.num_groups,
                self.rounds,
            )
        chosen = self._groups[: self.num_groups]
        samples = [s for group in chosen for s in group]
        ids = [gid for gid, group in enumerate(chosen) for _ in group]
        return samples, torch.tensor(ids, dtype=torch.long)


def overlong_penalty(
    response_lengths: Tensor, max_len: int, buffer_len: int, penalty_factor: float = 1.0
) -> Tensor:
    """DAPO soft overlong punishment (B,) ``<= 0``, added to the reward; ``response_lengths`` (B,).

    With ``L = max_len`` and ``C = buffer_len``: 0 for lengths ``<= L - C``, falling linearly to
    ``-penalty_factor`` at ``L`` (``-penalty_factor * (len - (L - C)) / C``), and ``-penalty_factor``
    beyond ``L`` (truncated responses). The ramp tells the model *that* it is approaching the budget before
    truncation makes the answer wrong. ``buffer_len`` 0 disables it (all zeros).
    """
    if max_len < 1 or buffer_len < 0 or buffer_len > max_len:
        raise ValueError(f"need max_len >= 1 and 0 <= buffer_len <= max_len, got {max_len}, {buffer_len}")
    lengths = response_lengths.to(torch.float32)
    if buffer_len == 0:
        return torch.zeros_like(lengths)
    excess = (lengths - (max_len - buffer_len)) / buffer_len
    return -penalty_factor * excess.clamp(0.0, 1.0)
