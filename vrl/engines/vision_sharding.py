"""Split a Qwen-VL vision tower's work over the sequence-parallel group, then all-gather its embeddings.

The Qwen2.5-VL and Qwen3-VL vision towers attend within one temporal patch (2 frames; an image is one),
so a video of grid ``(t, h, w)`` encoded as ``t`` grids ``(1, h, w)`` gives the same embeddings
(DeepStack features included). Every call's temporal patches ("units", ``h·w`` patches each, in input
order) are cut into S contiguous parts balanced by patch count; SP rank r encodes part r and the merged
embeddings ``(n_tokens, D)`` (Qwen3-VL: concatenated with its DeepStack features) are all-gathered in
order. Backward: each rank's gradient of the full embeddings covers only the tokens of its own sequence
slice, so the gradient is summed over the group (all-reduce) and each rank keeps the part it encoded.

Each rank may be handed the whole pixel input (it slices its rows) or only its own rows, as the FSDP
engine does under sequence parallelism (:func:`local_patch_range` with
:meth:`vrl.models.vision_reuse.VisionReuse.plan`): then no rank ever holds, or converts to float, the
pixels of the frames other ranks encode. Which of the two is told by the row count.

The wrapped ``forward`` returns the tower's output class with ``pooler_output`` (and
``deepstack_features``) for all inputs and ``last_hidden_state=None`` (callers use the merged output).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

#: attribute holding the :class:`VisionShard` on a wrapped vision tower
SHARD_ATTR = "vision_shard"


@dataclass
class VisionShard:
    """Counters of what this rank's vision tower encoded (for tests and metrics)."""

    calls: int = 0
    """Sharded forward calls (one per get_image_features / get_video_features)."""
    units: int = 0
    """Temporal patches this rank encoded."""
    total_units: int = 0
    """Temporal patches of all calls, over the whole group."""


def split_units(patches: list[int], parts: int) -> list[int]:
    """Boundaries ``[0, b1, …, len(patches)]`` cutting ``patches`` (per unit) into ``parts`` contiguous
    runs with patch counts as even as the units allow (a part may be empty when units < parts)."""
    cum = [0]
    for p in patches:
        cum.append(cum[-1] + p)
    total, bounds = cum[-1], [0]
    for k in range(1, parts):
        target = total * k / parts
        best = min(range(bounds[-1], len(patches) + 1), key=lambda i: (abs(cum[i] - target), i))
        bounds.append(best)
    bounds.append(len(patches))
    return bounds


class _GatherEmbeddings(torch.autograd.Function):
    """Variable-size all-gather of ``(n_r, D)`` rows; backward: all-reduce SUM, keep the local rows."""

    @staticmethod
    def forward(ctx, local, group, sizes):
        ctx.group, ctx.sizes = group, sizes
        width = max(sizes)
        padded = local.new_zeros(width, local.shape[1])
        padded[: local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded, group=group)
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        r = dist.get_rank(ctx.group)
        lo = sum(ctx.sizes[:r])
        return grad[lo : lo + ctx.sizes[r]], None, None


def _local_grid(grid_thw: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, int, int]:
    """Grid rows of units ``[lo, hi)`` (consecutive units of one video merged) and the pixel-row range."""
    rows, first, last, start = [], None, 0, 0
    unit = 0
    for t, h, w in grid_thw.tolist():
        take = max(0, min(hi, unit + t) - max(lo, unit))
        if take:
            if first is None:
                first = start + (max(lo, unit) - unit) * h * w
            rows.append([take, h, w])
            last = first + sum(a * b * c for a, b, c in rows)
        unit += t
        start += t * h * w
    if first is None:
        return grid_thw.new_zeros(0, 3), 0, 0
    return torch.tensor(rows, dtype=grid_thw.dtype, device=grid_thw.device), first, last


def local_patch_range(grid_thw: torch.Tensor, parts: int, rank: int) -> tuple[int, int]:
    """(first, last) pixel rows that rank ``rank`` of ``parts`` encodes for media of grid ``grid_thw``
    (N, 3): the same split the wrapped tower applies (whole temporal patches balanced by patch count)."""
    units = [h * w for t, h, w in grid_thw.tolist() for _ in range(t)]
    bounds = split_units(units, parts)
    _, first, last = _local_grid(grid_thw, bounds[rank], bounds[rank + 1])
    return first, last


def shard_vision(visual: nn.Module, group: dist.ProcessGroup) -> VisionShard:
    """Wrap ``visual.forward`` (in place) so each rank of ``group`` encodes its part; returns the counters."""
    original = visual.forward
    merge = int(visual.spatial_merge_size)
    levels = len(getattr(visual, "deepstack_visual_indexes", []) or [])
    width = int(visual.config.out_hidden_size)
    output_cls = getattr(sys.modules[type(visual).__module__], "BaseModelOutputWithDeepstackFeatures", None)
    s, r = dist.get_world_size(group), dist.get_rank(group)
    shard = VisionShard()

    def forward(hidden_states: torch.Tensor, grid_thw: torch.Tensor, **kwargs):
        units = [(h, w) for t, h, w in grid_thw.tolist() for _ in range(t)]
        bounds = split_units([h * w for h, w in units], s)
        tokens = [sum(h * w // merge**2 for h, w in units[bounds[k] : bounds[k + 1]]) for k in range(s)]
        grid, first, last = _local_grid(grid_thw, bounds[r], bounds[r + 1])
        total = sum(h * w for h, w in units)
        if hidden_states.shape[0] == total:  # the whole input: keep this rank's rows
            hidden_states = hidden_states[first:last]
        elif hidden_states.shape[0] != last - first:
            raise ValueError(
                f"sharded vision tower got {hidden_states.shape[0]} pixel rows: neither all {total} nor "
                f"this rank's {last - first} (rows {first}:{last})"
            )
        if grid.shape[0]:
            out = original(hidden_states, grid_thw=grid, **kwargs)
            feats = [out.pooler_output, *list(getattr(out, "deepstack_features", None) or [])]
            local = torch.cat(feats, dim=-1)
        else:  # nothing to encode here; still in the autograd graph, or this rank would skip the
            # backward all-reduce the other ranks of the group run
            dtype = hidden_states.dtype if hidden_states.is_floating_point() else torch.float32
            local = hidden_states.new_zeros(0, width * (1 + levels), dtype=dtype)
            anchor = next(visual.parameters())
            if torch.is_grad_enabled() and anchor.requires_grad:
                local = local + 0.0 * anchor.reshape(-1)[:1].sum().to(dtype)
        assert local.shape[0] == tokens[r], "vision tokens per unit follow h·w / merge²"
        full = _GatherEmbeddings.apply(local, group, tokens)
        shard.calls += 1
        shard.units += bounds[r + 1] - bounds[r]
        shard.total_units += len(units)
        pieces = list(full.split(width, dim=-1))
        if levels:
            return output_cls(last_hidden_state=None, pooler_output=pieces[0], deepstack_features=pieces[1:])
        return BaseModelOutputWithPooling(last_hidden_state=None, pooler_output=pieces[0])

    visual.forward = forward
    setattr(visual, SHARD_ATTR, shard)
    return shard
