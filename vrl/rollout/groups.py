"""Rollout parallelism: which trainer ranks share one rollout engine, and how prompts reach it.

The rollout engines are colocated with the trainer: every trainer rank runs a share of one. A rollout
group is ``rollout.tensor_parallel_size`` = t consecutive trainer ranks (on one node: they exchange
activations in every layer) running one tensor-parallel vLLM engine, each rank a TP shard of it (vLLM's
``external_launcher`` mode: every member runs the same prompts, in the same order, with the same seeds, and
gets the same outputs). There are ``world / t`` groups: the rollout's data-parallel size, which may differ
from the trainer's (a Megatron trainer at TP=2 has half as many data-parallel ranks as a rollout at t=1).
The group's leader is its lowest rank.

Prompts: ranks of one trainer data-parallel rank hold the same prompts. :func:`plan_work` lists each
distinct prompt list once (from its lowest holder) and splits the items evenly, in order, over the rollout
groups; every group generates its slice, and :func:`assemble` hands each rank the results of its own
prompts. All of it is pure (rank lists and counts in, index lists out), so it is tested without engines;
:class:`RolloutGroups` runs it over ``torch.distributed`` object collectives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist

from vrl.batch import Prompt
from vrl.distributed import DistContext
from vrl.rollout.base import Completion, SamplingParams

#: what one work item is: (owner rank, index in the owner's prompt list)
Item = tuple[int, int]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class RolloutLayout:
    """``world`` trainer ranks in rollout groups of ``tensor_parallel`` consecutive ranks."""

    world: int
    tensor_parallel: int = 1

    @property
    def data_parallel(self) -> int:
        """Rollout engines (groups)."""
        return self.world // self.tensor_parallel

    def group(self, rank: int) -> int:
        return rank // self.tensor_parallel

    def group_ranks(self, group: int) -> list[int]:
        return list(range(group * self.tensor_parallel, (group + 1) * self.tensor_parallel))

    def leader(self, group: int) -> int:
        return group * self.tensor_parallel

    def is_leader(self, rank: int) -> bool:
        return rank % self.tensor_parallel == 0


def check_rollout_layout(
    name: str, tensor_parallel: int, data_parallel: int, world: int, ranks_per_node: int
) -> RolloutLayout:
    """The rollout layout of ``rollout.*`` for ``world`` trainer ranks, ``ranks_per_node`` per node, or a
    ``ValueError`` naming the sizes that work. Pure: called before any process group starts."""
    if world < 1 or ranks_per_node < 1 or world % ranks_per_node:
        raise ValueError(f"ranks per node ({ranks_per_node}) must divide the world size ({world})")
    if tensor_parallel < 1:
        raise ValueError(f"rollout.tensor_parallel_size must be >= 1, got {tensor_parallel}")
    if data_parallel < 0:
        raise ValueError(f"rollout.data_parallel_size must be >= 0 (0: derived), got {data_parallel}")
    if name != "vllm" and tensor_parallel > 1:
        raise ValueError(
            f"rollout.tensor_parallel_size={tensor_parallel} needs rollout.name=vllm: the {name} engine keeps "
            "a whole copy of the model on every rank (use 1)"
        )
    if ranks_per_node % tensor_parallel:
        raise ValueError(
            f"rollout.tensor_parallel_size={tensor_parallel} must divide the trainer ranks per node "
            f"({ranks_per_node}): one engine per group of consecutive ranks on a node. "
            f"Choose one of {_divisors(ranks_per_node)}"
        )
    layout = RolloutLayout(world, tensor_parallel)
    if data_parallel not in (0, layout.data_parallel):
        raise ValueError(
            f"rollout.data_parallel_size={data_parallel}: the colocated rollout runs one engine per group of "
            f"rollout.tensor_parallel_size={tensor_parallel} trainer ranks, so its data-parallel size is "
            f"world / tensor_parallel = {layout.data_parallel}; set 0 (derived) or {layout.data_parallel}, "
            f"or change rollout.tensor_parallel_size (one of {_divisors(ranks_per_node)})"
        )
    return layout


def node_ranks(world: int) -> int:
    """Trainer ranks per node, from the launcher's environment (torchrun, Slurm); one node otherwise."""
    for key in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = os.environ.get(key, "").split("(")[0]
        if value.isdigit() and int(value) > 0:
            return int(value)
    return world


def first_holders(dp_ranks: Sequence[int]) -> list[int]:
    """For every rank, the lowest rank with the same trainer data-parallel rank (it speaks for the
    prompts they share)."""
    first: dict[int, int] = {}
    for rank, d in enumerate(dp_ranks):
        first.setdefault(d, rank)
    return [first[d] for d in dp_ranks]


def plan_work(counts: Sequence[int], holders: Sequence[int], groups: int) -> list[list[Item]]:
    """Items ``(owner, index)`` of every distinct prompt list (owners are the ranks that are their own
    holder, in rank order), split in order over ``groups`` rollout groups as evenly as possible (the first
    ``len % groups`` groups get one more). ``counts[r]``: prompts rank r holds."""
    items = [(r, j) for r, c in enumerate(counts) if holders[r] == r for j in range(c)]
    base, extra = divmod(len(items), groups)
    out, start = [], 0
    for g in range(groups):
        size = base + (g < extra)
        out.append(items[start : start + size])
        start += size
    return out


def assemble(plan: list[list[Item]], results: Sequence[Sequence[Any] | None], owner: int, count: int) -> list:
    """``owner``'s ``count`` results, from every group's results in plan order (``results[g]``, aligned
    with ``plan[g]``)."""
    out: list[Any] = [None] * count
    for items, res in zip(plan, results):
        if not items:
            continue
        assert res is not None and len(res) == len(items), "a group's results do not match its plan"
        for (r, j), value in zip(items, res):
            if r == owner:
                out[j] = value
    assert all(v is not None for v in out), f"rank {owner} is missing results"
    return out


def request_seeds(seed: int, count: int) -> list[int]:
    """Per-prompt sampling seeds of one generate call: the i-th prompt of a rank's list always gets the
    same seed, whichever rollout group generates it."""
    return [(seed * 1_000_003 + i) % 2**31 for i in range(count)]


SeededGenerate = Callable[[list[Prompt], SamplingParams, list[int]], list[list[Completion]]]


class RolloutGroups:
    """The rollout groups seen from one rank. :meth:`generate` is collective over all trainer ranks (every
    rank calls it, with its own prompts, possibly none) unless every rank is a group of its own holding
    distinct prompts, where it is local (no exchange at all)."""

    def __init__(self, layout: RolloutLayout, dist_ctx: DistContext) -> None:
        self.layout = layout
        self.rank = dist_ctx.rank
        dp_ranks = [0] * layout.world
        if layout.world > 1:
            dist.all_gather_object(dp_ranks, dist_ctx.dp_rank)
        self.holders = first_holders(dp_ranks)
        self.local = layout.tensor_parallel == 1 and self.holders == list(range(layout.world))

    def generate(
        self, prompts: list[Prompt], params: SamplingParams, seed: int, generate_seeded: SeededGenerate
    ) -> list[list[Completion]]:
        """This rank's completions of ``prompts``; ``generate_seeded(prompts, params, seeds)`` runs this
        rank's engine (its TP shard of the group's engine) on the group's share."""
        if self.local:
            return generate_seeded(prompts, params, request_seeds(seed, len(prompts))) if prompts else []
        mine = (len(prompts), seed, prompts if self.holders[self.rank] == self.rank else None)
        shared: list[Any] = [None] * self.layout.world
        dist.all_gather_object(shared, mine)
        plan = plan_work([s[0] for s in shared], self.holders, self.layout.data_parallel)
        items = plan[self.layout.group(self.rank)]
        work = [shared[r][2][j] for r, j in items]
        seeds = [request_seeds(shared[r][1], shared[r][0])[j] for r, j in items]
        out = generate_seeded(work, params, seeds) if work else []
        results: list[Any] = [None] * self.layout.world
        dist.all_gather_object(results, out if self.layout.is_leader(self.rank) else None)
        by_group = [results[self.layout.leader(g)] for g in range(self.layout.data_parallel)]
        return assemble(plan, by_group, self.holders[self.rank], len(prompts))
