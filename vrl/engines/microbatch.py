"""Token-budget micro-batches: split a rank's trajectories into forward/backward passes of at most
``engine.max_tokens_per_micro_batch`` computed tokens.

Why: video prompts are long and uneven, so a fixed number of trajectories per pass either wastes memory
on short prompts or runs out of it on long ones. A budget in tokens bounds a pass's activation memory.

Rules (the tests are the specification):

- **Cost** of a micro-batch = the tokens its language-model pass computes: ``Σ len`` packed; ``rows ×
  longest`` padded; with the padded shared-prompt pass ``prompts × longest prompt + rows × longest
  response``; packed with shared prompts each distinct prompt counts once. The budget is a hard cap: no
  micro-batch costs more (a balancing heuristic alone can overshoot it; this one never places an item where
  it does not fit).
- **Units**: with shared prompts a group (the trajectories holding one prompt) is kept together, so its
  prompt and vision tower run once for all its responses in one pass; a group that does not fit the budget
  whole is cut into the fewest consecutive pieces that do (each piece runs the prompt again). Without
  shared prompts each trajectory is a unit. A single trajectory longer than the budget is an error.
- **Balance**: start from ``ceil(Σ unit costs / budget)`` empty micro-batches (no fewer can hold them;
  or ``min_count`` if larger), then place the units in decreasing cost, each into the micro-batch with the
  lowest cost where it fits (worst-fit decreasing, which spreads the load), a new one when none fits.
- **Data parallel**: every rank must run the same number of passes (FSDP's collectives must match).
  :func:`agree_on_count` re-plans ranks with fewer micro-batches over the largest count (smaller, better
  balanced passes instead of wasted ones); a rank with fewer units than passes pads with zero-weight passes.
- How a step is split never changes its loss: the trainer's loss function normalises every
  ``loss_agg_mode`` by the whole step's token and sequence counts (:func:`vrl.trainer.update.make_loss_fn`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vrl.batch import Trajectory


@dataclass(frozen=True)
class Layout:
    """How a micro-batch's tokens are laid out, which decides its cost."""

    packing: bool
    """Sequences concatenated without padding (:mod:`vrl.engines.packing`)."""
    share_prompts: bool
    """Rows holding the same prompt run it once (the shared-prompt pass, padded or packed)."""


def micro_batch_cost(trajs: list[Trajectory], layout: Layout) -> int:
    """Tokens the language-model pass over ``trajs`` computes (see the module docstring)."""
    if not trajs:
        return 0
    prompts = {id(t.prompt): t.prompt.input_ids.numel() for t in trajs}
    shared = layout.share_prompts and len(prompts) < len(trajs)
    if layout.packing:
        responses = sum(t.response_len for t in trajs)
        if shared:
            return sum(prompts.values()) + responses
        return sum(t.prompt.input_ids.numel() for t in trajs) + responses
    if shared:
        return len(prompts) * max(prompts.values()) + len(trajs) * max(max(t.response_len for t in trajs), 1)
    return len(trajs) * max(t.prompt.input_ids.numel() + t.response_len for t in trajs)


def _units(trajs: list[Trajectory], budget: int, layout: Layout) -> list[list[int]]:
    """Indices of the items the planner places whole: groups (cut to fit) or single trajectories."""
    for i, t in enumerate(trajs):
        alone = t.prompt.input_ids.numel() + t.response_len
        if alone > budget:
            raise ValueError(
                f"trajectory {i} has {alone} tokens (prompt {t.prompt.input_ids.numel()} + response "
                f"{t.response_len}), more than engine.max_tokens_per_micro_batch={budget}: no micro-batch "
                f"can hold it. Set engine.max_tokens_per_micro_batch >= {alone} (at least "
                "data.max_prompt_length + rollout.max_response_length covers every trajectory)"
            )
    if not layout.share_prompts:
        return [[i] for i in range(len(trajs))]
    groups: dict[int, list[int]] = {}
    for i, t in enumerate(trajs):
        groups.setdefault(id(t.prompt), []).append(i)
    units: list[list[int]] = []
    for members in groups.values():
        piece: list[int] = []
        for i in members:
            if piece and micro_batch_cost([trajs[j] for j in [*piece, i]], layout) > budget:
                units.append(piece)
                piece = []
            piece.append(i)
        units.append(piece)
    return units


def plan_micro_batches(
    trajs: list[Trajectory], budget: int, layout: Layout, min_count: int = 1
) -> list[list[int]]:
    """Micro-batches (lists of indices into ``trajs``, ascending) of at most ``budget`` computed tokens
    each, at least ``min_count`` of them (empty ones are zero-weight passes)."""
    if budget < 1:
        raise ValueError(f"token budget must be >= 1, got {budget}")
    units = _units(trajs, budget, layout)

    def cost(indices: list[int]) -> int:
        return micro_batch_cost([trajs[i] for i in indices], layout)

    alone = [cost(unit) for unit in units]
    order = sorted(range(len(units)), key=lambda u: (-alone[u], u))
    # no layout computes fewer tokens than its units alone: ceil(sum / budget) passes are needed anyway
    bins: list[list[int]] = [[] for _ in range(max(min_count, -(-sum(alone) // budget)))]
    loads = [0] * len(bins)
    for u in order:
        best = -1
        for b, members in enumerate(bins):
            if (best < 0 or loads[b] < loads[best]) and cost(members + units[u]) <= budget:
                best = b
        if best < 0:
            bins.append([])
            loads.append(0)
            best = len(bins) - 1
        bins[best] = bins[best] + units[u]
        loads[best] = cost(bins[best])
    return [sorted(b) for b in bins]


def agree_on_count(plan: Callable[[int], list[list[int]]], world_size: int) -> list[list[int]]:
    """Plan with ``plan(min_count)`` until every rank holds the same number of micro-batches (collective).

    Each round all-reduces (max, min) of the counts; ranks below the max re-plan over at least that many.
    The count only grows and is bounded by the largest number of units, so the rounds end; every rank sees
    the same (max, min) and runs the same rounds."""
    micro = plan(1)
    while world_size > 1:
        counts = torch.tensor([len(micro), -len(micro)], dtype=torch.long)
        dist.all_reduce(counts, op=dist.ReduceOp.MAX)
        most, fewest = int(counts[0]), -int(counts[1])
        if most == fewest:
            break
        if len(micro) < most:
            micro = plan(most)
    return micro
