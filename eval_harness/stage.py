"""``stage=eval``: ``python jobs/submit.py stage=eval model=<dir> benchmarks=[videomme,mvbench] num_shards=N``.

An array stage. :func:`plan` (run by the submitter) loads and checks every benchmark's records, drops the
samples the run folder already has predictions for, and splits the rest into ``num_shards`` cost-balanced
slices; :func:`run_task` runs one slice through the asynchronous pipeline, appending a line per sample to
``<run>/predictions/<benchmark>.jsonl``; :func:`finalize` (a Slurm job depending on the whole array, or
run locally after it) aggregates and writes the reports. Rerunning with the same ``name=`` resumes, with
any ``num_shards``.
"""

from __future__ import annotations

from typing import Any

from eval_harness.config import Config, parse_roots
from eval_harness.predictions import check_settings
from eval_harness.results import aggregate_run
from eval_harness.runner import load_all, model_settings, remaining, run_shard
from eval_harness.shard import describe, plan_tasks
from vrl.config import ConfigError, UserError
from vrl.data.preflight import check_caches
from vrl.launch import preflight
from vrl.launch.context import RunContext
from vrl.launch.launcher import run_dir_for
from vrl.log import get_logger
from vrl.models.loading import check_model

logger = get_logger(__name__)

__all__ = ["Config", "check", "finalize", "plan", "run_task"]


def check(cfg: Config) -> None:
    """Before submission: the model folder and the media folders (the records are checked by :func:`plan`,
    which the submitter runs too, before any job)."""
    check_model(cfg.model)
    if cfg.annotations_dir:
        preflight.existing_dir(cfg.annotations_dir, "annotations_dir")
    if cfg.video_root:
        preflight.existing_dir(cfg.video_root, "video_root")
    for name, folder in parse_roots(cfg.video_roots).items():
        preflight.existing_dir(folder, f"video_roots ({name})")
    check_caches(cfg.cache_dir, cfg.video_source if cfg.cache_dir else "decode", prefix="")


def plan(cfg: Config) -> list[dict[str, Any]]:
    """Array tasks ``{"shard", "num_shards", "samples": [[benchmark, key], ...], "cost"}`` for the samples
    still without a prediction (none when everything is done: the finalize job still runs).

    The settings are recorded (``predictions/settings.json``) only once the model and every record have
    been read: a planning that fails leaves nothing that would refuse the corrected rerun."""
    run_dir = run_dir_for("eval", cfg)
    try:
        settings = model_settings(cfg)[2]
        records = load_all(cfg)
        check_settings(run_dir, settings)  # refuse a reused name with other settings now
    except UserError:
        raise
    except ValueError as e:  # bad annotation files or settings: a usage error, reported without traceback
        raise ConfigError(str(e)) from None
    todo = remaining(cfg, run_dir, records)
    total = sum(len(r) for r in records.values())
    tasks = plan_tasks(todo, cfg.num_shards, cfg.video)
    logger.info("eval plan: %d of %d samples to run; %s", len(todo), total, describe(tasks))
    return tasks


def run_task(cfg: Config, task: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Run one slice; samples already predicted (a requeued or rerun task) are skipped."""
    return run_shard(cfg, task, ctx.run_dir)


def finalize(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    """Aggregate every benchmark; refuses missing samples unless ``allow_partial=true``."""
    return aggregate_run(cfg, ctx.run_dir, allow_partial=cfg.allow_partial)
