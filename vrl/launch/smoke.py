"""Stage ``smoke``: check a cluster setup end to end before spending GPU hours.

Counts ``steps`` steps with an atomic checkpoint after each, so a preempted or requeued job resumes
where it stopped; with several tasks it also initialises torch.distributed (gloo) and all-reduces the
ranks, proving the exported MASTER_ADDR/RANK/WORLD_SIZE work across tasks and nodes.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from vrl.launch.config import LaunchConfig
from vrl.launch.context import RunContext
from vrl.log import get_logger

logger = get_logger(__name__)


@dataclass
class Config(LaunchConfig):
    steps: int = 5
    """Steps to count."""
    step_seconds: float = 0.2
    """Sleep per step (make it long to have time to preempt the job)."""
    fail_at_step: int = -1
    """Raise at this step (tests the failure path); -1 never."""

    def validate(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")


def _state_path(ctx: RunContext) -> Path:
    return ctx.run_dir / "smoke_state.json"


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _all_reduce_ranks(ctx: RunContext) -> int:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        t = torch.tensor([ctx.rank], dtype=torch.long)
        dist.all_reduce(t)
        return int(t.item())
    finally:
        dist.destroy_process_group()


def run(cfg: Config, ctx: RunContext) -> dict:
    path = _state_path(ctx)
    state = json.loads(path.read_text()) if path.exists() else {"step": 0, "starts": 0}
    state["starts"] += 1
    start = state["step"]
    if start:
        logger.info("resuming from step %d (start #%d)", start, state["starts"])
    rank_sum = _all_reduce_ranks(ctx) if ctx.world_size > 1 else 0
    for step in range(start, cfg.steps):
        if step == cfg.fail_at_step:
            raise RuntimeError(f"smoke: failing at step {step} as asked (fail_at_step={step})")
        time.sleep(cfg.step_seconds)
        if ctx.is_main:
            state["step"] = step + 1
            _save(path, state)
            logger.info("step %d/%d", step + 1, cfg.steps)
    return {
        "steps": cfg.steps,
        "resumed_from": start,
        "starts": state["starts"],
        "world_size": ctx.world_size,
        "rank_sum": rank_sum,
        "hostname": socket.gethostname(),
        "job_id": os.environ.get("SLURM_JOB_ID", ""),
    }
