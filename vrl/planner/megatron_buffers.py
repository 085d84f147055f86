"""Megatron-Core's contiguous gradient buffer and the distributed optimizer's slice of it, per rank.

With ``engine.distributed_optimizer`` the engine wraps a pipeline stage in megatron's
``DistributedDataParallel`` (megatron-core 0.16, configured without overlap, so without a bucket size
limit). That lays every trainable parameter of the stage into one contiguous buffer (one per parameter
dtype; the stage has one): parameters in reverse ``named_parameters()`` order, each start rounded up to
64 elements, each bucket's end rounded up to ``lcm(DP, 128)`` elements so it splits evenly over DP. A
tied embedding split over pipeline stages (stage 0's word embeddings, the last stage's output layer) is
a bucket of its own. The parameters become views of a parameter buffer of that size (their dtype), the
gradients of an fp32 buffer of that size. Data-parallel rank ``r`` owns the ``r``-th 1/DP of every
bucket: its optimizer holds, for each parameter, the part inside that range (AdamW's two moments, plus
fp32 main weights when the parameters are bfloat16).

Why model it element for element: the padding and the cut through parameters make the ranks' optimizer
slices differ by a few hundred bytes, and the planner is checked against the engine exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vrl.planner.tensors import ParamShape

PARAM_ALIGN = 64
"""Elements: megatron rounds every parameter's start in the buffer up to this."""
BUCKET_ALIGN = 128
"""Elements: every bucket's end is rounded up to ``lcm(DP, BUCKET_ALIGN)``."""


@dataclass(frozen=True)
class GradBuffer:
    numel: int
    """Elements of the buffer, padding included (the parameter and the gradient buffer both)."""
    buckets: tuple[tuple[int, int], ...]
    """(start, end) of every bucket in the buffer."""
    ranges: tuple[tuple[int, int, int], ...]
    """(start, end, bucket) of every parameter, in buffer order (the reverse of the stage's order)."""


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def grad_buffer(
    params: Sequence[ParamShape], dp: int, own_bucket: frozenset[str] = frozenset()
) -> GradBuffer:
    """The buffer of ``params`` (the stage's ``named_parameters()`` order) for data-parallel size ``dp``;
    ``own_bucket``: names of parameters megatron gives a bucket of their own (the shared embedding)."""
    divisor = math.lcm(dp, BUCKET_ALIGN)
    buckets: list[tuple[int, int]] = []
    ranges: list[tuple[int, int, int]] = []
    bucket_start = start = end = 0
    open_params = 0

    def close(at: int) -> int:
        nonlocal bucket_start, open_params
        padded = _round_up(at, divisor)
        buckets.append((bucket_start, padded))
        bucket_start, open_params = padded, 0
        return padded

    for p in reversed(params):
        start = _round_up(start, PARAM_ALIGN)
        alone = p.name in own_bucket
        if alone and open_params:
            start = close(start)
        end = start + p.numel
        ranges.append((start, end, len(buckets)))
        open_params += 1
        start = close(end) if alone else end
    if open_params:
        close(end)
    return GradBuffer(buckets[-1][1] if buckets else 0, tuple(buckets), tuple(ranges))


def optimizer_slices(buffer: GradBuffer, dp: int) -> tuple[int, ...]:
    """Per data-parallel rank, elements of the parameters inside its share of every bucket: what its
    optimizer keeps state (and main weights) for."""
    out = [0] * dp
    for start, end, bucket in buffer.ranges:
        lo, hi = buffer.buckets[bucket]
        size = (hi - lo) // dp
        for rank in range(max(0, (start - lo) // size), min(dp, -(-(end - lo) // size))):
            a, b = lo + rank * size, lo + (rank + 1) * size
            out[rank] += max(0, min(end, b) - max(start, a))
    return tuple(out)
