"""Launcher stage ``cache``: ``python jobs/submit.py stage=cache input=... out=... num_shards=N``.

An array stage: :func:`plan` gives one task per shard, :func:`run_task` builds one shard file (resumable),
:func:`finalize` writes the index once every task has ended. ``cluster=slurm`` runs the tasks as a Slurm
job array; ``cluster=local`` runs them here.
"""

from __future__ import annotations

from typing import Any

from cache_builder import build
from cache_builder.config import CacheConfig as Config
from cache_builder.records import load_records, media_items
from vrl.config import UserError
from vrl.launch import preflight
from vrl.launch.context import RunContext
from vrl.log import get_logger

__all__ = ["Config", "check", "finalize", "plan", "run_task"]

logger = get_logger(__name__)


def check(cfg: Config) -> None:
    """Before submission: the records file and its records, the media root, a writable output folder."""
    preflight.readable_file(cfg.input, "input")
    if not media_items(load_records(cfg.input)):
        raise UserError(f"input: {cfg.input} names no media file (no record has a path, videos or images)")
    if cfg.video_root:
        preflight.existing_dir(cfg.video_root, "video_root")
    try:
        out = cfg.out_dir()
    except ValueError as e:
        raise UserError(str(e)) from None
    preflight.writable_dir(out, "out" if cfg.out else "cache_dir")


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
