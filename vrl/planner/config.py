"""``PlanConfig``: the memory planner's own keys (``plan.*``), part of the train-stage schema."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PlanConfig:
    gpu_memory_gb: float = 0.0
    """Memory of one GPU in GiB as nvidia-smi reports it (80 for an 80 GB A100/H100). 0: the Slurm
    profile's gpu_memory_gb (cluster=slurm); without either the plan is printed but not judged."""
    force: bool = False
    """stage=train cluster=slurm: submit even when the plan says the layout does not fit."""
    reserved_gb: float = 3.0
    """Device memory no tensor of ours holds: CUDA contexts of the trainer and of vLLM's engine process,
    NCCL buffers, allocator fragmentation. Measure yours (nvidia-smi during a run) and set it."""
    text_tokens: int = 128
    """Text tokens of a prompt besides its media (system prompt, question, chat template)."""
    prompt_tokens: int = 0
    """The longest prompt in tokens, media included, when you know it from your data; 0: derived from
    the media budget (data.video / data.image) plus text_tokens, capped by data.max_prompt_length."""

    def validate(self) -> None:
        for key in ("gpu_memory_gb", "reserved_gb"):
            if getattr(self, key) < 0:
                raise ValueError(f"plan.{key} must be >= 0, got {getattr(self, key)}")
        if self.text_tokens < 0 or self.prompt_tokens < 0:
            raise ValueError("plan.text_tokens and plan.prompt_tokens must be >= 0")
