"""Device memory of the colocated rollout engine, awake (generating) and asleep (during the update).

- ``vllm`` on GPUs takes ``rollout.gpu_memory_utilization`` × the device's memory at start (weights in
  bfloat16, activations of its profiling run, the rest as KV cache; vLLM refuses to start if that much is
  not free). With ``rollout.enable_sleep_mode`` it sleeps at level 1 during the update: weights move to
  pinned host memory and the KV cache is dropped, so it holds nothing we count on the device (its CUDA
  context is part of ``plan.reserved_gb``). Without sleep mode it keeps its share all the time.
- ``hf`` generates with an unsharded float32 copy of the policy, always resident, plus a float32 KV
  cache for ``rollout.batch_size`` sequences while generating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vrl.planner.shapes import ModelShapes
from vrl.planner.tensors import total_numel

BF16, FP32 = 2, 4


@dataclass(frozen=True)
class RolloutBytes:
    awake: int
    """On the device while generating."""
    asleep: int
    """On the device during the update."""
    detail: dict[str, int] = field(default_factory=dict)
    problem: str = ""
    """Why this rollout cannot work on the device at all (empty when it can)."""


def kv_bytes_per_token(shapes: ModelShapes, dtype_bytes: int) -> int:
    """K and V of every decoder layer for one token."""
    t = shapes.text
    return 2 * t.layers * t.kv_dim * dtype_bytes


def rollout_bytes(
    shapes: ModelShapes, rollout: Any, max_sequence_tokens: int, device_bytes: int | None
) -> RolloutBytes:
    """``rollout``: the ``rollout.*`` config; ``max_sequence_tokens``: the longest prompt + response."""
    numel = total_numel(shapes)
    if rollout.name == "hf":
        weights = numel * FP32
        kv = rollout.batch_size * max_sequence_tokens * kv_bytes_per_token(shapes, FP32)
        return RolloutBytes(weights + kv, weights, {"rollout.weights": weights, "rollout.kv_cache": kv})
    tp = int(getattr(rollout, "tensor_parallel_size", 1) or 1)  # the rollout issue's key, when it lands
    weights = -(-numel * BF16 // tp)
    one_sequence = max_sequence_tokens * kv_bytes_per_token(shapes, BF16) // tp
    if device_bytes is None:  # no device size: at least the weights and one full sequence's KV
        share = weights + one_sequence
    else:
        share = int(rollout.gpu_memory_utilization * device_bytes)
    kv = max(0, share - weights)
    problem = ""
    if kv < one_sequence:
        problem = (
            f"rollout.gpu_memory_utilization={rollout.gpu_memory_utilization} leaves vLLM {share / 2**30:.1f} "
            f"GiB: its bfloat16 weights take {weights / 2**30:.1f} GiB and one {max_sequence_tokens}-token "
            f"sequence's KV cache {one_sequence / 2**30:.2f} GiB"
        )
    asleep = 0 if rollout.enable_sleep_mode else share
    detail = {"rollout.weights": weights, "rollout.kv_cache_and_activations": kv}
    return RolloutBytes(share, asleep, detail, problem)
