"""The learning-rate schedule every training engine uses: a warm-start phase, then RL's own ramp and decay."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vrl.engines.config import EngineConfig


def lr_lambda(
    cfg: EngineConfig, total_steps: int, sft_steps: int = 0, sft_lr: float = 0.0
) -> Callable[[int], float]:
    """Multiplier of ``cfg.lr`` per optimizer step: two phases when there is a supervised warm start.

    The first ``sft_steps`` steps (warm start) ramp linearly over ``cfg.warmup_steps`` to ``sft_lr``
    (0: ``cfg.lr``) and stay there. The remaining ``total_steps - sft_steps`` (RL) ramp again over
    ``cfg.warmup_steps`` to ``cfg.lr``, then stay (``constant``) or decay (``cosine``) to ``min_lr_ratio``.
    """
    sft_ratio = (sft_lr or cfg.lr) / cfg.lr

    def fn(step: int) -> float:
        if step < sft_steps:
            ramp = (step + 1) / cfg.warmup_steps if step < cfg.warmup_steps else 1.0
            return sft_ratio * ramp
        step, steps = step - sft_steps, total_steps - sft_steps
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "constant" or steps <= cfg.warmup_steps:
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return fn


def lr_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: EngineConfig,
    total_steps: int,
    sft_steps: int = 0,
    sft_lr: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """``optimizer``'s scheduler over ``total_steps`` optimizer steps (see :func:`lr_lambda`)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps, sft_steps, sft_lr))
