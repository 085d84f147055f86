"""Atomic, resumable training checkpoints.

Layout of ``<run>/checkpoints/step_<N>/``: ``engine/`` (model + optimizer + scheduler, the engine's own
sharded format), ``hf/`` (a Hugging Face export of the policy), ``trainer_state.json`` (step, sampler,
metrics history position), ``config.yaml`` (the settings the checkpoint was trained with),
``rng/rank_<r>.pt`` and finally ``COMPLETE``. A checkpoint is written under ``step_<N>.tmp`` and renamed
once complete, so a job killed mid-save leaves only a ``.tmp`` folder that resume ignores (and the next
save removes).

Loading runs no code from the files: the engines read their state weights-only (or through a restricted
unpickler, :mod:`vrl.engines.dcp_load`), the RNG states hold only tensors and numbers and are read
weights-only, the rest is JSON and YAML.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vrl import device
from vrl.config import save as save_config
from vrl.distributed import DistContext
from vrl.engines.base import TrainingEngine
from vrl.log import get_logger
from vrl.safe_load import UnsafeFileError, load_tensors

logger = get_logger(__name__)

_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoint_root(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return None
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and (d / "COMPLETE").exists():
            found.append((int(m.group(1)), d))
    return max(found)[1] if found else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    run_dir: Path,
    step: int,
    engine: TrainingEngine,
    trainer_state: dict[str, Any],
    dist_ctx: DistContext,
    *,
    export_hf: bool = True,
    keep_last: int = 2,
    config: Any = None,
) -> Path:
    """Write checkpoint ``step`` atomically (collective), with ``config`` (the run's settings) beside it.
    Returns its final path."""
    assert keep_last >= 1, keep_last  # 0 would delete the checkpoint just written
    root = checkpoint_root(run_dir)
    final = root / f"step_{step:06d}"
    tmp = root / f"step_{step:06d}.tmp"
    if dist_ctx.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "rng").mkdir(parents=True)
    dist_ctx.barrier()
    engine.save(tmp / "engine")
    if export_hf:
        engine.export_hf(tmp / "hf")
    torch.save(_rng_to_file(device.rng_state()), tmp / "rng" / f"rank_{dist_ctx.rank}.pt")
    dist_ctx.barrier()
    if dist_ctx.is_main:
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1))
        if config is not None:
            save_config(config, tmp / "config.yaml")
        (tmp / "COMPLETE").write_text(str(step))
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        _fsync_dir(root)
        _prune(root, keep_last)
        logger.info("saved checkpoint %s", final)
    dist_ctx.barrier()
    return final


def _prune(root: Path, keep_last: int) -> None:
    steps = sorted(d for d in root.iterdir() if _STEP_DIR.match(d.name))
    for d in steps[: max(0, len(steps) - keep_last)]:
        shutil.rmtree(d, ignore_errors=True)
    for d in root.glob("*.tmp"):
        shutil.rmtree(d, ignore_errors=True)


def load_checkpoint(path: Path, engine: TrainingEngine, dist_ctx: DistContext) -> dict[str, Any]:
    """Restore engine + this rank's RNG; return the trainer state (collective)."""
    engine.load(path / "engine")
    rng = path / "rng" / f"rank_{dist_ctx.rank}.pt"
    if rng.exists():
        device.set_rng_state(_rng_from_file(rng))
    logger.info("resumed from %s", path)
    return json.loads((path / "trainer_state.json").read_text())


def _rng_to_file(state: dict[str, Any]) -> dict[str, Any]:
    """:func:`vrl.device.rng_state` with numpy's key array as a tensor: weights-only loadable."""
    name, keys, pos, has_gauss, cached = state["numpy"]
    numpy = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos)}
    numpy |= {"has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    return {**state, "numpy": numpy}


def _rng_from_file(path: Path) -> dict[str, Any]:
    try:
        state = load_tensors(path)
    except UnsafeFileError as e:
        if "numpy" in str(e) and "_reconstruct" in str(e):  # a numpy array: the format before tensors
            raise UnsafeFileError(
                f"{path} holds a numpy array (RNG states written by an older vrl) and is not read: "
                "delete it to resume without this rank's random state (sampling is seeded per step anyway)"
            ) from None
        raise
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    return {**state, "numpy": (n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"])}
