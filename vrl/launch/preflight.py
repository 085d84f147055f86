"""Checks ``jobs/submit.py`` makes in the submitting process, before anything is written.

A wrong path, file, record or model then costs no queue time, and no run folder or settings file is left
behind to stand in the way of the corrected command. Every stage gets the check of ``run_root``; a stage
module adds its own in an optional ``check(cfg)`` (data files and their records, the model folder, output
folders), raising :class:`~vrl.config.UserError`. Checks read, never write (a probe file created and
removed at once is how writability is known, since permission bits do not tell for root or read-only
mounts).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from vrl.config import UserError


def writable_dir(path: str | os.PathLike[str], key: str) -> None:
    """``path`` is a folder this process can write in, or one it can create; else raise naming ``key``."""
    target = Path(path).expanduser().absolute()
    probe = target
    while not probe.exists() and probe != probe.parent:  # the nearest existing ancestor
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == target else f"cannot be created: {probe} is a file"
        raise UserError(f"{key}={path} {where}, not a folder", hint=f"set {key}= to a folder")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".vrl-write-check-")
    except OSError as e:
        raise UserError(
            f"{key}={path} is not writable: cannot create files in {probe} ({e.strerror})",
            hint=f"set {key}= to a folder you can write",
        ) from None
    os.close(fd)
    os.unlink(name)


def readable_file(path: str | os.PathLike[str], key: str) -> Path:
    """``path`` is an existing file; else raise naming ``key``."""
    p = Path(path).expanduser()
    if not str(path):
        raise UserError(f"{key} is not set", hint=f"set {key}=<file>")
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "not found"
        raise UserError(f"{key}: {p} {what}")
    return p


def existing_dir(path: str | os.PathLike[str], key: str) -> Path:
    """``path`` is an existing folder; else raise naming ``key``."""
    p = Path(path).expanduser()
    if not p.is_dir():
        what = "is a file, not a folder" if p.exists() else "does not exist"
        raise UserError(f"{key}: {p} {what}")
    return p


def check_stage(module: ModuleType, cfg: Any) -> None:
    """The launch checks of every stage, then the stage's own ``check(cfg)``."""
    writable_dir(cfg.run_root, "run_root")
    check = getattr(module, "check", None)
    if check is not None:
        check(cfg)
