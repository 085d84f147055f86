"""Optional supervised warm start on the training records' ``offline_output`` before RL.

A randomly initialised (or weak) policy never produces a parsable answer, so every group's rewards are
equal and GRPO has no signal. A few supervised steps on the offline trajectories teach the answer format
(and some of the task); RL then improves on what the policy samples. The steps run through the same
engine and optimizer as RL, as a token-mean negative log-likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vrl.batch import MicroBatch, Trajectory
from vrl.distributed import DistContext
from vrl.engines.base import LossFn


@dataclass
class WarmupConfig:
    sft_steps: int = 0
    """Supervised steps on the records' offline_output before RL (0: none)."""
    batch_size: int = 32
    """Offline trajectories per supervised step over all ranks."""
    lr: float = 0.0
    """Learning rate of the supervised steps (after engine.warmup_steps of linear ramp); 0: engine.lr. RL
    then starts its own ramp to engine.lr."""

    def validate(self) -> None:
        if self.sft_steps < 0 or self.batch_size < 1 or self.lr < 0:
            raise ValueError("warmup.sft_steps and warmup.lr must be >= 0 and warmup.batch_size >= 1")


def nll_loss_fn(trajs: list[Trajectory], dist_ctx: DistContext) -> LossFn:
    """Token-mean negative log-likelihood over the whole batch on all ranks (collective)."""
    replicas = dist_ctx.world_size // dist_ctx.dp_size
    tokens = dist_ctx.all_reduce_sum(float(sum(t.response_len for t in trajs))) / replicas
    denominator = max(tokens, 1.0) / dist_ctx.dp_size

    def loss_fn(
        logp: torch.Tensor, entropy: torch.Tensor | None, mb: MicroBatch
    ) -> tuple[torch.Tensor, dict]:
        mask = mb.token_mask.to(logp.device)
        nll = -(logp * mask).sum()
        loss = nll / denominator
        return loss, {"nll": float(nll.detach()) / max(float(mask.sum()), 1.0)}

    return loss_fn
