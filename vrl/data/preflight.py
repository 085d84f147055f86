"""The data half of ``stage=train``'s check before submission (see :mod:`vrl.launch.preflight`).

It reads what the job will read — every record of ``data.train_files`` / ``data.val_files`` and the index
of every ``data.cache_dir`` — so a missing or malformed file, a bad record or a folder that is not a
tensor cache is reported by ``jobs/submit.py`` before anything is queued or written. The records are read
again by the job (a large file costs its load time twice, in exchange for no queue time lost).
"""

from __future__ import annotations

from pathlib import Path

from cache_builder.index import load_index
from vrl.config import UserError
from vrl.data.config import DataConfig
from vrl.data.records import load_files
from vrl.log import get_logger

logger = get_logger(__name__)

HINT_CACHE = (
    "build one with `python jobs/submit.py stage=cache ...` with this run's spec, or set "
    "data.video_source=prefer_cache (cache, else decode) or decode"
)


def check_caches(dirs: list[str], mode: str, prefix: str = "data.") -> None:
    """Every ``cache_dir`` entry is a tensor cache (a folder with a readable ``index.json``).

    With ``video_source=cache`` anything else is an error (every sample would fail); with
    ``prefer_cache`` a missing or not-yet-built folder only warns (frames are decoded), a file is an error.
    ``prefix`` is where the keys sit (``data.`` for training, empty for evaluation).
    """
    if mode == "decode":
        return
    key = f"{prefix}cache_dir"
    hint = HINT_CACHE.replace("data.", prefix)
    for d in dirs:
        p = Path(d)
        if p.exists() and not p.is_dir():
            raise UserError(f"{key}: {d} is a file, not a cache folder", hint=hint)
        try:
            index = load_index(p) if p.is_dir() else None
        except ValueError as e:  # unreadable index.json or another format version
            raise UserError(f"{key}: {d} is not a readable tensor cache: {e}", hint=hint) from None
        if index is not None:
            continue
        what = "does not exist" if not p.exists() else "is not a tensor cache (no index.json)"
        if mode == "cache":
            raise UserError(f"{key}: {d} {what}, and {prefix}video_source=cache", hint=hint)
        logger.warning("%s: %s %s: its frames will be decoded", key, d, what)


def check_data(cfg: DataConfig) -> None:
    """Records and caches of a training run; raises :class:`~vrl.config.UserError` naming the file, record
    or key. Nothing to read for the embedded toy suite (empty ``train_files``): the job generates it."""
    if cfg.media_root:
        root = Path(cfg.media_root)
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "does not exist"
            raise UserError(f"data.media_root: {root} {what}")
    if cfg.train_files:
        train = load_files(cfg.train_files, cfg.media_root, cfg.problem_types)
        if not train:
            which = f" of data.problem_types={cfg.problem_types}" if cfg.problem_types else ""
            raise UserError(f"no training records{which} in data.train_files={cfg.train_files}")
        load_files(cfg.val_files, cfg.media_root, cfg.problem_types)
    check_caches(cfg.cache_dir, cfg.video_source)
