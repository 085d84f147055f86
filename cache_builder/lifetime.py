"""The child processes of a cache build end with the process that started them, ``kill -9`` included.

A killed build gets no chance to stop its children, and before this they lived on: the worker processes
of ``launcher=local num_workers=N`` kept building their shard and then waited forever for the next task
(each holds both ends of the pool's task pipe, so none ever sees it close), their libav decoding servers
with them. Two mechanisms, chosen per kind of child:

- worker processes and external decoders (ffmpeg, ffprobe) ask the Linux kernel for ``SIGKILL`` when
  their parent goes (``prctl(PR_SET_PDEATHSIG)``). The kernel sends it when the *thread* that started
  the child ends, so this is only for children whose starting thread outlives them: the pool is made
  by the thread that waits for its results, an ffmpeg by the thread that reads its frames.
- the libav decoding servers are shared by the threads of a process (one may start a server another
  then uses), so they watch their parent themselves (:mod:`cache_builder.decode_worker`, which cannot
  import this package, does it in its own few lines).

Elsewhere than Linux a worker watches its parent from a thread instead; external decoders there end
when they next write to the pipe of their dead reader.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
#: how often a watching thread looks at its parent
WATCH_INTERVAL_S = 0.2


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # a C library without prctl (not glibc/musl)
        return None


_PRCTL = _load_prctl()


def _kill_me_with_parent() -> None:
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def preexec() -> Callable[[], None] | None:
    """``preexec_fn`` for :class:`subprocess.Popen` of an external program that the calling thread waits
    for: the kernel kills the child when that thread (or its process) ends. None where unsupported."""
    return _kill_me_with_parent if _PRCTL is not None else None


def end_with_parent(parent_pid: int) -> None:
    """Called first thing in a child Python process (a pool initializer): end it when ``parent_pid`` is
    gone. ``parent_pid`` closes the race of a parent that died before this call."""
    if _PRCTL is not None:
        _kill_me_with_parent()
    else:
        threading.Thread(target=_watch, args=(parent_pid,), name="watch-parent", daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)
