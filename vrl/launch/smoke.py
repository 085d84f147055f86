"""Stage ``smoke``: check a cluster setup end to end before spending GPU hours.

An array of ``num_tasks`` tasks; each counts ``steps`` steps with an atomic checkpoint after each, so a
preempted or requeued task resumes where it stopped. With several processes per task it also initialises
torch.distributed (gloo) and all-reduces the ranks, proving that the exported MASTER_ADDR / RANK /
WORLD_SIZE work across tasks and nodes. The finalize job checks that every task finished.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from vrl.config import MAX_STEPS
from vrl.launch.config import MAX_ARRAY_TASKS, LaunchConfig
from vrl.launch.context import RunContext
from vrl.log import get_logger

logger = get_logger(__name__)


@dataclass
class Config(LaunchConfig):
    num_tasks: int = 1
    """Array tasks (each an independent counter)."""
    steps: int = 5
    """Steps to count per task."""
    step_seconds: float = 0.2
    """Sleep per step (make it long to have time to preempt a task)."""
    fail_at_step: int = -1
    """Raise at this step (tests the failure path); -1 never."""
    fail_rank: int = -1
    """This rank raises before the all-reduce (the other ranks would wait in it); -1: none."""

    def validate(self) -> None:
        if not 0 <= self.steps <= MAX_STEPS or not 1 <= self.num_tasks <= MAX_ARRAY_TASKS:
            raise ValueError(
                f"need steps in [0, {MAX_STEPS}] and num_tasks in [1, {MAX_ARRAY_TASKS}], got "
                f"steps={self.steps}, num_tasks={self.num_tasks}"
            )
        if self.step_seconds < 0:
            raise ValueError(f"step_seconds must be >= 0, got {self.step_seconds}")


def _state_path(run_dir: Path, task: int) -> Path:
    return run_dir / "smoke" / f"task_{task}.json"


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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


def plan(cfg: Config) -> list[int]:
    return list(range(cfg.num_tasks))


def run_task(cfg: Config, task: int, ctx: RunContext) -> dict:
    path = _state_path(ctx.run_dir, task)
    state = json.loads(path.read_text()) if path.exists() else {"step": 0, "starts": 0}
    start = state["step"]
    if start:
        logger.info("task %d resuming from step %d (start #%d)", task, start, state["starts"] + 1)
    if ctx.rank == cfg.fail_rank:
        raise RuntimeError(f"smoke: rank {ctx.rank} failing before the all-reduce as asked (fail_rank)")
    rank_sum = _all_reduce_ranks(ctx) if ctx.world_size > 1 else 0
    if ctx.is_main:
        state["starts"] += 1
        _save(path, state)
    for step in range(start, cfg.steps):
        if step == cfg.fail_at_step:
            raise RuntimeError(f"smoke: failing at step {step} as asked (fail_at_step={step})")
        time.sleep(cfg.step_seconds)
        if ctx.is_main:
            state["step"] = step + 1
            _save(path, state)
            logger.info("task %d step %d/%d", task, step + 1, cfg.steps)
    result = {
        "task": task,
        "steps": state["step"],
        "resumed_from": start,
        "starts": state["starts"],
        "world_size": ctx.world_size,
        "rank_sum": rank_sum,
        "hostname": socket.gethostname(),
        "job_id": os.environ.get("SLURM_JOB_ID", ""),
        "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID", ""),
        "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID", ""),
    }
    if ctx.is_main:
        _save(path, {**state, "result": result})
    return result


def finalize(cfg: Config, ctx: RunContext) -> dict:
    done, missing = [], []
    for task in plan(cfg):
        path = _state_path(ctx.run_dir, task)
        state = json.loads(path.read_text()) if path.exists() else {}
        (done if state.get("step") == cfg.steps else missing).append(task)
    if missing:
        raise RuntimeError(f"smoke: tasks {missing} did not finish")
    summary = {"tasks": len(done), "steps": cfg.steps}
    (ctx.run_dir / "smoke" / "summary.json").write_text(json.dumps(summary))
    logger.info("smoke: all %d tasks finished %d steps", len(done), cfg.steps)
    return summary
