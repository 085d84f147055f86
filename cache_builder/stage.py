"""Launcher stage ``cache``: ``python jobs/submit.py stage=cache input=... out=... num_shards=N``.

An array stage: :func:`plan` gives one task per shard, :func:`run_task` builds one shard file (resumable),
:func:`finalize` writes the index once every task has ended. ``cluster=slurm`` runs the tasks as a Slurm
job array; ``cluster=local`` runs them here.
"""

from __future__ import annotations

from typing import Any

from cache_builder import build
from cache_builder.config import CacheConfig as Config
from vrl.launch.context import RunContext
from vrl.log import get_logger

__all__ = ["Config", "finalize", "plan", "run_task"]

logger = get_logger(__name__)


def plan(cfg: Config) -> list[dict[str, Any]]:
    """One JSON-able task per shard: ``{"shard", "num_shards", "items"}``."""
    if cfg.launcher == "mpi":
        logger.warning(
            "launcher=mpi has no effect in the stage (its shards run as array tasks); "
            "for MPI run `mpirun -n N python -m cache_builder build launcher=mpi ...`"
        )
    return build.plan_shards(cfg)


def run_task(cfg: Config, task: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Build shard ``task["shard"]`` into ``<out>/shards/``; skips entries already built."""
    return build.build_shard(cfg, task)


def finalize(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    """Write ``failures.jsonl`` and ``index.json`` (last, atomically); return the build summary."""
    return build.finalize(cfg, build.shard_summaries(cfg, cfg.num_shards))
