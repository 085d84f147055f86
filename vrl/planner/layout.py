"""The parallel layout and micro-batching the planner plans for, read from a train config.

Fields of the long-video and Megatron-at-scale issues (Ulysses sequence parallelism, token-budget
micro-batches, packing, Megatron's distributed optimizer, sequence parallelism and selective recompute)
default to the behaviour of an engine without them. :func:`layout_from_config` reads each with
``getattr`` under the config key its issue names, so it takes effect here the day the key exists, and
the planner's suggestions only name keys the config has.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class Layout:
    engine: str
    """fsdp | megatron."""
    world: int
    """Processes (= GPUs) of the training job."""
    micro_batch_size: int
    """Trajectories per forward/backward pass."""
    param_dtype: str = "float32"
    """Compute dtype (float32 | bfloat16): activations, FSDP gathers, autocast copies."""
    tp: int = 1
    pp: int = 1
    num_microbatches: int = 1
    """Megatron: micro-batches per pipeline schedule (1F1B keeps up to PP in flight on stage 0)."""
    recompute: str = "none"
    """none | full (engine.gradient_checkpointing, or Megatron's engine.recompute=full) | selective (Megatron)."""
    share_prompts: bool = True
    """fsdp: a group's prompt runs once per micro-batch and its responses on its KV cache."""
    sp: int = 1
    """fsdp: Ulysses sequence-parallel size (``engine.sequence_parallel_size``); world = DP × SP."""
    max_tokens_per_micro_batch: int = 0
    """fsdp: token budget of a micro-batch (``engine.max_tokens_per_micro_batch``); 0: ``micro_batch_size``."""
    packing: bool = False
    """fsdp: packed sequences without padding (``engine.packing``)."""
    megatron_sequence_parallel: bool = False
    """Megatron sequence parallelism with TP (``engine.sequence_parallel``)."""
    distributed_optimizer: bool = False
    """Megatron optimizer state sharded over DP (``engine.distributed_optimizer``, megatron's buffers)."""
    megatron_bf16_params: bool = False
    """Megatron bf16 parameters with fp32 main weights (with the distributed optimizer on GPUs)."""
    attention: str = "sdpa"
    """fsdp: the HF attention implementation; ``eager`` keeps (heads × length²) probabilities per layer."""

    @property
    def dp(self) -> int:
        return max(1, self.world // (self.tp * self.pp * self.sp))

    def with_changes(self, **changes: Any) -> Layout:
        return replace(self, **changes)


def layout_from_config(cfg: Any) -> Layout:
    """The layout of a train-stage config (``cfg.engine``, the world from ``cfg.layout()``)."""
    e = cfg.engine
    nodes, tasks = cfg.layout()
    recompute = str(getattr(e, "recompute", "none") or "none")
    if e.gradient_checkpointing and recompute == "none":
        recompute = "full"
    return Layout(
        engine=e.name,
        world=nodes * tasks,
        micro_batch_size=e.micro_batch_size,
        param_dtype=e.param_dtype,
        tp=e.tensor_parallel_size if e.name == "megatron" else 1,
        pp=e.pipeline_parallel_size if e.name == "megatron" else 1,
        num_microbatches=e.num_microbatches,
        recompute=recompute,
        share_prompts=bool(e.share_prompts) and e.name == "fsdp",
        attention=str(getattr(e, "attn_implementation", "sdpa") or "sdpa"),
        sp=int(getattr(e, "sequence_parallel_size", 1) or 1),
        max_tokens_per_micro_batch=int(getattr(e, "max_tokens_per_micro_batch", 0) or 0),
        packing=bool(getattr(e, "packing", False)),
        megatron_sequence_parallel=bool(getattr(e, "sequence_parallel", False)),
        distributed_optimizer=bool(getattr(e, "distributed_optimizer", False)),
        # the distributed optimizer keeps bfloat16 parameters with fp32 main weights in the optimizer
        megatron_bf16_params=bool(getattr(e, "distributed_optimizer", False)) and e.param_dtype == "bfloat16",
    )
