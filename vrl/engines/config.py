"""``EngineConfig``: the training engine (``engine.*``): backend, optimizer, schedule, parallel layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from vrl.config import MAX_STEPS, choice

ENGINES = ["fsdp", "megatron"]


@dataclass
class EngineConfig:
    name: str = choice("fsdp", ENGINES)
    """Training backend: fsdp (torch FSDP2, data parallel) or megatron (Megatron-Core tensor/pipeline parallel)."""
    lr: float = 1e-6
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas [beta1, beta2]."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    lr_schedule: str = choice("constant", ["constant", "cosine"])
    """Learning-rate schedule after warm-up."""
    min_lr_ratio: float = 0.0
    """Cosine schedule floor as a fraction of lr."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables."""
    micro_batch_size: int = 8
    """Trajectories per forward/backward pass (gradient accumulation inside a mini-batch)."""
    param_dtype: str = choice("float32", ["float32", "bfloat16"])
    """Compute dtype of parameters in forward/backward (FSDP mixed precision keeps fp32 masters)."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory."""
    share_prompts: bool = True
    """fsdp: run each distinct prompt of a micro-batch once (vision tower included) and its group's
    responses on its key/value cache, instead of every row's full sequence; same log-probs and gradients
    up to float rounding. Training passes fall back to full sequences under gradient_checkpointing."""
    tensor_parallel_size: int = 1
    """Megatron: tensor-parallel degree (must divide attention heads and KV heads)."""
    pipeline_parallel_size: int = 1
    """Megatron: pipeline stages (must divide the number of decoder layers)."""
    num_microbatches: int = 1
    """Megatron: microbatches per pipeline step (1F1B schedule)."""

    def validate(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"engine.lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_steps <= MAX_STEPS:
            raise ValueError(f"engine.warmup_steps must be in [0, {MAX_STEPS}], got {self.warmup_steps}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(
                "engine.weight_decay and engine.grad_clip must be >= 0 (grad_clip 0: no clipping)"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"engine.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.micro_batch_size < 1:
            raise ValueError(f"engine.micro_batch_size must be >= 1, got {self.micro_batch_size}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"engine.betas must be two values in [0, 1), got {self.betas}")
        for key in ("tensor_parallel_size", "pipeline_parallel_size", "num_microbatches"):
            if getattr(self, key) < 1:
                raise ValueError(f"engine.{key} must be >= 1, got {getattr(self, key)}")
        if self.name == "fsdp" and (self.tensor_parallel_size > 1 or self.pipeline_parallel_size > 1):
            raise ValueError(
                "engine.tensor_parallel_size / pipeline_parallel_size need engine=megatron (fsdp is data parallel)."
            )
