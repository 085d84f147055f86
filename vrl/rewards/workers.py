"""Scoring worker processes: isolation for risky parsers and parallelism for CPU-heavy types.

A worker is ``python -m vrl.rewards.worker``: it reads one JSON request per line on stdin (problem type,
answer, sample, config) and writes one JSON verdict per line. JSON only, never pickle. Each request has
a wall-clock limit; a worker that misses it (or dies) is killed with its process group and replaced on
the next request, and the call reports a timeout. Workers start lazily (the first call waits for a
worker to import its libraries, ~1 s; that wait is not counted in the call's limit) and exit when their
stdin closes, i.e. with the parent.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vrl.log import get_logger

logger = get_logger(__name__)

STARTUP_TIMEOUT_S = 120.0


def _import_path() -> str:
    """The parent's import path for the worker, led by the folder holding this ``vrl`` package.

    Extension modules then resolve as they do in the parent, and a ``vrl`` folder elsewhere on the path
    (e.g. ``tests/vrl``) cannot shadow the package as a namespace package.
    """
    root = str(Path(__file__).resolve().parents[2])
    entries = [root, *(p for p in sys.path if p and p != root)]
    return os.pathsep.join(dict.fromkeys(entries))


class WorkerTimeout(Exception):
    """The worker did not answer in time (it was killed) or died."""


class _Worker:
    def __init__(self, memory_mb: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = _import_path()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vrl.rewards.worker", str(int(memory_mb))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._buf = bytearray()
        line = self._readline(time.monotonic() + STARTUP_TIMEOUT_S)
        if line is None or json.loads(line).get("ready") is not True:
            self.kill()
            raise RuntimeError("A reward scoring worker (python -m vrl.rewards.worker) failed to start.")

    def _readline(self, deadline: float) -> bytes | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buf += chunk
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        return line

    def request(self, payload: bytes, timeout_s: float) -> dict:
        assert self.proc.stdin is not None
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise WorkerTimeout("worker died") from e
        line = self._readline(deadline)
        if line is None:
            raise WorkerTimeout(f"no answer within {timeout_s:.1f} s")
        return json.loads(line)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class WorkerPool:
    """Up to ``size`` workers; ``call`` blocks until one is free. Thread-safe."""

    def __init__(self, size: int, memory_mb: int) -> None:
        self.size = size
        self.memory_mb = memory_mb
        self.pid = os.getpid()
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False

    def _acquire(self) -> _Worker:
        with self._cond:
            while not self._idle and self._count >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Worker(self.memory_mb)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            keep = worker is not None and not self._closed
            if keep:
                self._idle.append(worker)  # type: ignore[arg-type]
            else:
                self._count -= 1
            self._cond.notify()
        if worker is not None and not keep:
            worker.kill()

    def call(self, request: dict[str, Any], timeout_s: float) -> dict:
        """Send one request; raises :class:`WorkerTimeout` when the worker misses the limit or dies."""
        payload = (json.dumps(request, default=repr) + "\n").encode()
        worker = self._acquire()
        try:
            reply = worker.request(payload, timeout_s)
        except WorkerTimeout:
            worker.kill()
            self._release(None)
            raise
        self._release(worker)
        return reply

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for worker in idle:
            worker.kill()


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool(size: int, memory_mb: int) -> WorkerPool:
    """The process-wide pool, grown to ``size``; rebuilt after a fork or a memory-limit change."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid() or _pool.memory_mb != memory_mb:
            if _pool is not None and _pool.pid == os.getpid():
                _pool.close()
            _pool = WorkerPool(size, memory_mb)
        elif _pool.size < size:
            with _pool._cond:
                _pool.size = size
                _pool._cond.notify_all()
        return _pool


def shutdown() -> None:
    """Stop every idle worker of this process (also runs at exit)."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool.pid == os.getpid():
            _pool.close()
        _pool = None


atexit.register(shutdown)
