"""Bytes of parameters, gradients, optimizer state and main weights per device, per engine and layout.

What the engines allocate today (read from ``vrl/engines/fsdp.py`` and ``vrl/engines/megatron/``):

- **fsdp**: the HF model is loaded in float32 and stays float32 (the master weights); ``param_dtype``
  only sets FSDP2's compute dtype. With more than one rank, or with ``param_dtype=bfloat16``, every
  parameter is sharded along dim 0 by ``fully_shard``: each rank holds ``ceil(rows / N)`` rows (FSDP2
  pads the last shard, so every rank's storage has that size). Gradients after the reduce-scatter live
  in one padded float32 buffer per FSDP unit: the same size. AdamW's moments are ``zeros_like`` of the
  unpadded local shard (rank 0 holds the most). One float32 process is not sharded at all.
  The working copies FSDP2 makes during the update (counted as activations, "working memory"): the
  root unit (vision tower, embeddings, LM head, final norm) is all-gathered in the compute dtype and
  kept from forward to the end of backward, with its unsharded gradients; decoder layers are gathered
  one at a time plus one prefetched; one unit's gradients are reduce-scattered from a float32 buffer.
- **megatron**: each rank holds its pipeline stage's tensor-parallel shard (plus, on stage 0, the whole
  vision tower) in float32, float32 gradients for every parameter during the step, and a plain AdamW
  over exactly those tensors: 16 bytes per parameter of its shard. ``param_dtype=bfloat16`` is CUDA
  autocast, whose cache keeps a bfloat16 copy of every weight during forward and backward.

- **megatron, distributed optimizer** (``engine.distributed_optimizer``): megatron's DDP buffers
  (:mod:`megatron_buffers`): parameters and fp32 gradients each one padded buffer per stage, AdamW's
  moments (and, with bfloat16 parameters on GPUs, fp32 main weights) for this DP rank's slice only:
  8 + 8/DP bytes per parameter in fp32, 6 + 12/DP with bf16 parameters, plus the padding.
- **sequence parallelism** (fsdp's Ulysses ``engine.sequence_parallel_size``, Megatron's
  ``engine.sequence_parallel``) leaves these bytes as they are: FSDP shards over all DP × SP ranks, Megatron's
  parameters are the TP shards either way; only activations change.

AdamW's ``step`` counters (one 0-dim float32 per parameter tensor, or per slice) live on the host in
torch's default (non-fused, non-capturable) AdamW and are not counted. Checked exactly against the
engines' tensors and ``memory_breakdown()`` on CPU for every layout they run there
(``tests/vrl/planner/test_model_memory.py``); bf16 parameters with fp32 main weights by the gpu tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from vrl.planner.layout import Layout
from vrl.planner.megatron_buffers import grad_buffer, optimizer_slices
from vrl.planner.shapes import ModelShapes
from vrl.planner.tensors import ParamShape, hf_layer_numel, hf_parameters, megatron_parameters, total_numel

FP32 = 4
DTYPE_BYTES = {"float32": 4, "bfloat16": 2}


@dataclass(frozen=True)
class StateBytes:
    """Persistent training state on one device (bytes), plus the engine's working copies."""

    params: int
    """Policy parameters as allocated (+ the frozen reference policy's, when a KL term needs it)."""
    grads: int
    """Gradients at their peak (after backward, before the optimizer step; freed after it)."""
    optimizer: int
    """AdamW moments, plus float32 main weights where they are separate from the parameters."""
    working: int
    """Transient copies the engine makes during the update (FSDP all-gathers, autocast weight cache)."""
    detail: dict[str, int] = field(default_factory=dict)

    @property
    def persistent(self) -> int:
        return self.params + self.grads + self.optimizer


def _rows(shape: tuple[int, ...]) -> tuple[int, int]:
    """(dim-0 size, elements per row)."""
    rest = 1
    for d in shape[1:]:
        rest *= d
    return shape[0], rest


def fsdp_sharded(p: ParamShape, world: int, rank: int) -> tuple[int, int]:
    """(padded storage elements, unpadded local elements) of ``p`` on ``rank`` under FSDP2."""
    rows, rest = _rows(p.shape)
    chunk = -(-rows // world)
    local = max(0, min(chunk, rows - rank * chunk))
    return chunk * rest, local * rest


@lru_cache(maxsize=256)
def _fsdp_elements(shapes: ModelShapes, world: int, rank: int) -> tuple[int, int]:
    """(padded storage, unpadded local) elements of all parameters on ``rank`` of ``world``."""
    parts = [fsdp_sharded(p, world, rank) for p in hf_parameters(shapes)]
    return sum(s for s, _ in parts), sum(u for _, u in parts)


def fsdp_state(shapes: ModelShapes, layout: Layout, rank: int = 0, reference: bool = False) -> StateBytes:
    """Rank ``rank``'s bytes under the FSDP engine (rank 0 holds the largest unpadded shards)."""
    compute = DTYPE_BYTES[layout.param_dtype]
    sharded = layout.world > 1 or layout.param_dtype != "float32"
    if sharded:
        storage, local = _fsdp_elements(shapes, layout.world, rank)
    else:
        storage = local = total_numel(shapes)
    policy = storage * FP32
    ref = policy if reference else 0
    working = 0
    detail: dict[str, int] = {}
    if sharded:
        layer = hf_layer_numel(shapes)
        root = total_numel(shapes) - layer * shapes.text.layers
        root_gathered = root * compute * 2  # unsharded compute-dtype parameters + their gradients
        layers_gathered = 2 * layer * compute  # the running layer and the prefetched one
        reduce_scatter = layer * (compute + (FP32 if compute != FP32 else 0))  # unsharded grads + fp32 input
        working = root_gathered + layers_gathered + reduce_scatter
        detail = {
            "fsdp.root_unit_gathered": root_gathered,
            "fsdp.layers_gathered": layers_gathered,
            "fsdp.reduce_scatter": reduce_scatter,
        }
    detail.update({"params.policy": policy, "params.reference": ref})
    return StateBytes(
        params=policy + ref,
        grads=storage * FP32,
        optimizer=2 * local * FP32,
        working=working,
        detail=detail,
    )


def megatron_state(
    shapes: ModelShapes, layout: Layout, pp_rank: int = 0, reference: bool = False, dp_rank: int = 0
) -> StateBytes:
    """One rank's bytes under the Megatron engine, for pipeline stage ``pp_rank`` (any TP rank) and, with
    the distributed optimizer, data-parallel rank ``dp_rank`` (its slice of the optimizer state)."""
    params = megatron_parameters(shapes, layout.tp, layout.pp, pp_rank)
    numel = sum(p.numel for p in params)
    param_b = 2 if layout.megatron_bf16_params else FP32
    policy = numel * param_b
    grads = numel * FP32
    detail: dict[str, int] = {}
    if layout.distributed_optimizer:  # megatron's buffers: padded, reduce-scattered over DP
        padded, slices = _megatron_buffer(shapes, layout.tp, layout.pp, pp_rank, layout.dp)
        mine = slices[dp_rank]
        policy, grads = padded * param_b, padded * FP32
        main = mine * FP32 if layout.megatron_bf16_params else 0  # fp32 parameters are their own
        optimizer = mine * 2 * FP32 + main
        detail = {"optimizer.main_weights": main, "megatron.buffer_padding": (padded - numel) * param_b}
    else:
        optimizer = numel * 2 * FP32
    ref = numel * param_b if reference else 0
    autocast = numel * 2 if (layout.param_dtype == "bfloat16" and not layout.megatron_bf16_params) else 0
    detail.update({"params.policy": policy, "params.reference": ref, "megatron.autocast_weights": autocast})
    return StateBytes(params=policy + ref, grads=grads, optimizer=optimizer, working=autocast, detail=detail)


@lru_cache(maxsize=1024)
def _megatron_buffer(
    shapes: ModelShapes, tp: int, pp: int, pp_rank: int, dp: int
) -> tuple[int, tuple[int, ...]]:
    """(elements of stage ``pp_rank``'s padded buffer, each DP rank's optimizer slice): the layout search
    asks for the same stages many times."""
    own = frozenset()
    if shapes.text.tied_embeddings and pp > 1:  # a tied embedding split over stages: a bucket of its own
        if pp_rank == 0:
            own = frozenset({"gpt.embedding.word_embeddings.weight"})
        elif pp_rank == pp - 1:
            own = frozenset({"gpt.output_layer.weight"})
    buffer = grad_buffer(megatron_parameters(shapes, tp, pp, pp_rank), dp, own)
    return buffer.numel, optimizer_slices(buffer, dp)


def state_bytes(shapes: ModelShapes, layout: Layout, reference: bool = False) -> tuple[StateBytes, int]:
    """The most loaded device's state and its pipeline stage (0 for fsdp)."""
    if layout.engine == "fsdp":
        return fsdp_state(shapes, layout, 0, reference), 0
    stages = []
    for r in range(layout.pp):
        dp_rank = 0  # with the distributed optimizer: the rank with the largest slice
        if layout.distributed_optimizer:
            slices = _megatron_buffer(shapes, layout.tp, layout.pp, r, layout.dp)[1]
            dp_rank = max(range(layout.dp), key=slices.__getitem__)
        stages.append(megatron_state(shapes, layout, r, reference, dp_rank))
    best = max(range(layout.pp), key=lambda r: stages[r].persistent + stages[r].working)
    return stages[best], best
