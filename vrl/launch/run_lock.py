"""One job per run folder: a lock that a job holds on its run folder for as long as it runs.

``<run>/run.lock`` is ``flock``-ed (exclusive) by one process of the job — the train stage's rank 0; the
other ranks share the run through it — and names its holder while held (host, pid, Slurm job id, start
time). The kernel drops a flock when the holding process ends, however it ends (``kill -9`` included),
so a dead job never blocks the next one. Where the file system has no flock (some network file systems
answer ENOLCK/ENOSYS), the named holder is checked instead: a live process on this host, or a Slurm job
that ``squeue`` still lists, holds the folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from vrl.config import ConfigError
from vrl.log import get_logger

logger = get_logger(__name__)

LOCK_FILE = "run.lock"
_NO_FLOCK = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


class RunLocked(ConfigError):
    """Another job holds the run folder."""


def _holder(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def _refusal(run_dir: Path, holder: dict[str, Any]) -> RunLocked:
    if holder:
        who = f"host {holder.get('host')}, pid {holder.get('pid')}"
        job = holder.get("slurm_job_id")
        who += (f", Slurm job {job}" if job else "") + f", since {holder.get('since')}"
        stop = f"scancel {job}" if job else f"kill {holder.get('pid')} on {holder.get('host')}"
    else:
        who, stop = "a job that has not written its name yet", "see the jobs writing there"
    return RunLocked(
        f"run folder {run_dir} is in use by another job ({who}): only one job may train into a run folder. "
        f"Wait for it to end, stop it ({stop}), or choose another name=."
    )


def _flock(fd: int) -> bool | None:
    """True: locked; False: held by another process; None: this file system has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in _NO_FLOCK:
            return None
        raise


def _alive(holder: dict[str, Any]) -> bool:
    """Without flock: is the job named in the lock file still running (unknown counts as running)?"""
    if not holder:
        return False
    if holder.get("host") == socket.gethostname():
        try:
            return psutil.Process(int(holder["pid"])).create_time() == holder.get("pid_started")
        except (psutil.NoSuchProcess, KeyError, ValueError):
            return False
    job = holder.get("slurm_job_id")
    if job:
        try:
            out = subprocess.run(["squeue", "-h", "-j", str(job)], capture_output=True, text=True, timeout=30)
            return out.returncode == 0 and bool(out.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            return True
    return True


def check_free(run_dir: Path) -> None:
    """Raise :class:`RunLocked` if a job holds ``run_dir`` now (the launcher asks before it submits)."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        got = _flock(fd)
        if got is False or (got is None and _alive(_holder(path))):
            raise _refusal(Path(run_dir), _holder(path))
    finally:
        os.close(fd)  # releases the probe's lock, if it got one


@contextmanager
def hold(run_dir: Path, wait_s: float = 10.0) -> Iterator[dict[str, Any]]:
    """Hold ``run_dir`` for the ``with`` block, or raise :class:`RunLocked` naming the holder.

    ``wait_s`` rides over a launcher's brief probe (:func:`check_free`) of the same folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while not (got := _flock(fd)):
            if got is None:
                if _alive(_holder(path)):
                    raise _refusal(run_dir, _holder(path))
                logger.warning("%s: this file system has no flock; the folder is claimed by name only", path)
                break
            if time.monotonic() >= deadline:
                raise _refusal(run_dir, _holder(path))
            time.sleep(0.1)
        me = psutil.Process()
        info = {
            "host": socket.gethostname(),
            "pid": me.pid,
            "pid_started": me.create_time(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
            "since": datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)  # released: the file names no holder
    finally:
        os.close(fd)
