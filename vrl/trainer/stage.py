"""``stage=train``: RL training. With no data given it trains on the embedded toy suite.

On the embedded default the stage prepares everything it needs: the toy suite (generated once per
content hash) and, when frames should come from the cache and no cache is named, a tensor cache of the
suite built with exactly this run's spec. Every rank runs this module; rank 0 prepares, the others wait.

One job per run folder: rank 0 holds the folder's lock (:mod:`vrl.launch.run_lock`) for the job's life,
the other ranks share it; a second job stops at once on every rank. Reusing a run name resumes it, under
the rules of :mod:`vrl.trainer.resume` (checked by the launcher before it submits, see ``before_submit``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vrl.data.records import load_files
from vrl.distributed import DistContext, init_distributed, shutdown
from vrl.launch import run_lock
from vrl.launch.context import RunContext
from vrl.log import get_logger
from vrl.models.tiny import resolve_model, vrl_home
from vrl.trainer import presets  # noqa: F401  (registers preset=toy, the stage's default, and others)
from vrl.trainer.config import Config
from vrl.trainer.resume import before_submit

logger = get_logger(__name__)

__all__ = ["Config", "before_submit", "check", "run"]


@contextlib.contextmanager
def hold_run_folder(run_dir: Path, dist_ctx: DistContext) -> Iterator[None]:
    """Rank 0 holds ``run_dir``'s lock for the block; every rank raises the same error when it cannot."""
    with contextlib.ExitStack() as stack:
        refusal = ""
        if dist_ctx.is_main:
            try:
                stack.enter_context(run_lock.hold(run_dir))
            except run_lock.RunLocked as e:
                refusal = str(e)
        refusals = [r for r in dist_ctx.gather_list([refusal]) if r]
        if refusals:
            raise run_lock.RunLocked(refusals[0])
        yield


def _toy_files(cfg: Config) -> tuple[list[str], list[str], Path]:
    from vrl.toy.suite import ensure_toy_suite

    root = ensure_toy_suite(cfg.toy)
    return [str(root / "train.jsonl")], [str(root / "val.jsonl")], root


def _toy_cache(cfg: Config, root: Path, family: str, build: bool = True) -> list[str]:
    """A cache of the toy suite under this run's spec (built once; a rebuild skips finished entries).

    ``build=False`` only names it: the other ranks use what rank 0 built (one build per cache folder;
    concurrent no-op builds of every rank rewrote its shard and index at once and hung a 4-rank job).
    """
    from cache_builder.build import build_local
    from cache_builder.config import CacheConfig
    from vrl.data.media import specs_for

    video_spec, image_spec = specs_for(cfg.data, family)
    out = vrl_home() / "cache" / f"{root.name}-{video_spec.hash()[:8]}-{image_spec.hash()[:8]}"
    if not build:
        return [str(out)]
    out.mkdir(parents=True, exist_ok=True)
    records = out.parent / f"{out.name}.records.jsonl"
    if not records.exists():
        tmp = records.with_suffix(".tmp")
        tmp.write_text((root / "train.jsonl").read_text() + (root / "val.jsonl").read_text())
        tmp.replace(records)
    v = video_spec
    logger.info("tensor cache of the toy suite for this run's spec: %s (building what is missing)", out)
    build_local(
        CacheConfig(
            input=str(records),
            video_root=str(root),
            out=str(out),
            family=family,
            fps=v.fps,
            min_frames=v.min_frames,
            max_frames=v.max_frames,
            min_pixels=v.min_pixels,
            max_pixels=v.max_pixels,
            total_pixels=v.total_pixels,
            image_min_pixels=image_spec.min_pixels,
            image_max_pixels=image_spec.max_pixels,
            progress=False,
        )
    )
    return [str(out)]


def prepare_data(cfg: Config, dist_ctx: Any, family: str) -> tuple[list[dict], list[dict], list[str]]:
    """Records and cache folders of the run (rank 0 generates/builds what is missing)."""
    train_files, val_files = list(cfg.data.train_files), list(cfg.data.val_files)
    cache_dirs = list(cfg.data.cache_dir)
    use_toy = not train_files
    if use_toy:
        if dist_ctx.is_main:
            train_files, val_files, root = _toy_files(cfg)
            if cfg.data.video_source != "decode" and not cache_dirs:
                cache_dirs = _toy_cache(cfg, root, family)
        dist_ctx.barrier()
        if not dist_ctx.is_main:
            train_files, val_files, root = _toy_files(cfg)
            if cfg.data.video_source != "decode" and not cache_dirs:
                cache_dirs = _toy_cache(cfg, root, family, build=False)
    train = load_files(train_files, cfg.data.media_root, cfg.data.problem_types)
    val = load_files(val_files, cfg.data.media_root, cfg.data.problem_types) if val_files else []
    if cfg.data.max_train_records:
        train = train[: cfg.data.max_train_records]
    if cfg.data.max_val_records:
        val = val[: cfg.data.max_val_records]
    if not train:
        raise ValueError("no training records (check data.train_files and data.problem_types)")
    return train, val, cache_dirs


def check(cfg: Config) -> None:
    """Before submission (``jobs/submit.py``, see vrl.launch.preflight): the model folder, the data files
    and their records, the caches; a mistake is reported in one screen before anything is queued."""
    from vrl.data.preflight import check_data
    from vrl.models.loading import check_model

    check_model(cfg.model)
    check_data(cfg.data)


def run(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    model_parallel = (cfg.engine.tensor_parallel_size, cfg.engine.pipeline_parallel_size)
    if cfg.engine.name == "megatron":  # a layout the checkpoint cannot hold fails before any process group
        from vrl.engines.megatron.layout import check_model_layout

        check_model_layout(cfg.model, *model_parallel, ctx.world_size)
    if cfg.engine.sequence_parallel_size > 1:  # heads and world size checked before any process group
        from vrl.engines.sequence_parallel import check_model_sequence_parallel

        check_model_sequence_parallel(cfg.engine, cfg.model, ctx.world_size)
    from vrl.rollout.groups import check_rollout_layout, node_ranks

    r = cfg.rollout  # rollout groups fit the world and its nodes: checked before any process group
    check_rollout_layout(
        r.name, r.tensor_parallel_size, r.data_parallel_size, ctx.world_size, node_ranks(ctx.world_size)
    )
    dist_ctx = init_distributed(
        model_parallel=model_parallel, sequence_parallel=cfg.engine.sequence_parallel_size
    )
    try:
        with hold_run_folder(ctx.run_dir, dist_ctx):
            return _train(cfg, ctx, dist_ctx)
    finally:
        shutdown()


def _train(cfg: Config, ctx: RunContext, dist_ctx: DistContext) -> dict[str, Any]:
    from vrl.models.loading import model_family
    from vrl.trainer.loop import Trainer

    model_path = resolve_model(cfg.model)
    train, val, cache_dirs = prepare_data(cfg, dist_ctx, model_family(model_path))
    logger.info(
        "training %s on %d records (%d validation), engine=%s, rollout=%s, world=%d",
        cfg.model,
        len(train),
        len(val),
        cfg.engine.name,
        cfg.rollout.name,
        dist_ctx.world_size,
    )
    trainer = Trainer(cfg, ctx.run_dir, dist_ctx, model_path, train, val, cache_dirs)
    return trainer.fit()
