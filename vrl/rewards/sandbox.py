"""Running untrusted Python against ground-truth tests, never in the caller's process.

Each call starts a fresh ``python -I -S`` (isolated mode, no site-packages: standard library only) with:
- an empty environment and a temporary working directory (deleted afterwards);
- ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_NPROC`` set by the runner
  before any untrusted code runs; as root it then drops to ``nobody`` (so ``RLIMIT_NPROC`` bites and files
  outside its directory are not writable), using the first interpreter whose standard library ``nobody``
  can read (this one, else the system ``python3``); with none, it stays root (logged);
- an audit hook refusing sockets, subprocesses, fork/exec/spawn, kill, ctypes, raising limits, and
  file writes/removals outside its working directory (the only guard left when it runs as root);
- isolation ``namespace`` (the default where it works): ``unshare --net --pid --mount-proc --fork
  --kill-child`` (as root) or with ``--user --map-root-user`` (unprivileged user namespaces): no network
  interface but a down loopback, its own PID space, everything in it killed when the sandbox ends;
  isolation ``rlimits`` (the fallback, logged once): limits and the audit hook only, no OS-level network
  isolation, and a process that calls ``setsid`` could outlive the wall-clock kill;
- a wall-clock limit: the whole process group is killed with ``SIGKILL``.

Tests are either assert-style strings (``"assert f(2) == 4"``, executed after the solution in its
namespace) or stdin/stdout pairs ``{"input": "...", "output": "..."}`` (the solution runs as a program;
the expected output never enters the sandbox and is compared here). Assert-style tests carry their
expected values into the sandbox, so code that inspects the harness could forge a pass; stdin/stdout
tests cannot be forged that way.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vrl.log import get_logger

logger = get_logger(__name__)

_RUNNER = (Path(__file__).with_name("sandbox_runner.py")).read_text()
_MAX_REPORT_BYTES = 4 * 1024 * 1024
_OUTPUT_CHARS = 65536
_NOBODY = 65534
_probe_lock = threading.Lock()
_probed: dict[str, _Setup] = {}


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 5.0
    """Wall-clock limit; the process group is killed after it."""
    cpu_s: int = 4
    """RLIMIT_CPU in seconds."""
    memory_mb: int = 512
    """RLIMIT_AS in MiB."""
    max_processes: int = 16
    """RLIMIT_NPROC of the sandbox user."""
    file_mb: int = 16
    """RLIMIT_FSIZE in MiB."""
    isolation: str = "auto"
    """auto, namespace or rlimits (see the module docstring)."""


_PROBE = SandboxLimits(wall_s=30.0, cpu_s=10, memory_mb=512)


@dataclass(frozen=True)
class SandboxResult:
    compiled: bool
    """The code compiled (Python syntax)."""
    passed: int
    """Tests that passed."""
    total: int
    """Tests run."""
    timed_out: bool
    """The wall-clock limit killed the sandbox (tests not reported count as failed)."""
    isolation: str
    """The isolation actually used: namespace or rlimits."""

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


def _namespace_prefix() -> list[str] | None:
    """An ``unshare`` command line that works here, or None."""
    unshare = shutil.which("unshare")
    if not unshare:
        return None
    base = ["--net", "--pid", "--mount-proc", "--fork", "--kill-child"]
    variants = [[unshare, *base], [unshare, "--user", "--map-root-user", *base]]
    if os.geteuid() != 0:
        variants.reverse()
    for cmd in variants:
        try:
            probe = subprocess.run(
                [*cmd, "--", "/bin/true"], env={}, capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return [*cmd, "--"]
    return None


def _interpreters() -> list[str]:
    found = [sys.executable, getattr(sys, "_base_executable", sys.executable)]
    found += [p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)]
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class _Setup:
    prefix: tuple[str, ...]
    """unshare command line (empty: no namespaces)."""
    python: str
    """Interpreter running the sandbox."""
    drop_privileges: bool
    """Root drops to nobody inside the sandbox."""


def _setup(isolation: str) -> _Setup:
    """Namespaces and interpreter for ``isolation``, probed once per process.

    As root, the sandbox drops to ``nobody`` so that ``RLIMIT_NPROC`` applies and files are not writable;
    that needs an interpreter whose standard library ``nobody`` can read (a Python under ``/root`` is
    not), so the system ``python3`` is tried next. Without one it stays root (logged): process creation
    and writes outside its directory are then refused by the audit hook only.
    """
    with _probe_lock:
        if isolation in _probed:
            return _probed[isolation]
        prefix: list[str] = []
        if isolation != "rlimits":
            found = _namespace_prefix()
            if found is None and isolation == "namespace":
                raise ValueError(
                    "sandbox_isolation=namespace but 'unshare --net --pid' does not work on this machine "
                    "(needs root or unprivileged user namespaces); use sandbox_isolation=auto or rlimits."
                )
            if found is None:
                logger.warning(
                    "Python sandbox: unshare is unavailable or refused; running with rlimits and audit hooks "
                    "only (no OS-level network isolation)."
                )
            prefix = found or []
        setup = _Setup(tuple(prefix), sys.executable, False)
        if os.geteuid() == 0:
            for python in _interpreters():
                candidate = _Setup(tuple(prefix), python, True)
                probe = _run(
                    candidate, "import math, heapq, json, re, collections, itertools", ["pass"], _PROBE
                )
                if probe.passed == 1:
                    setup = candidate
                    break
            else:
                logger.warning(
                    "Python sandbox runs as root: no interpreter with a standard library readable by "
                    "'nobody' (tried %s).",
                    ", ".join(_interpreters()),
                )
        _probed[isolation] = setup
        return setup


def _read_reports(proc: subprocess.Popen, nonce: str, deadline: float) -> tuple[list[dict], bool]:
    """Events the runner reported before it exited or the deadline passed (then: timed_out)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = bytearray()
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            timed_out = True
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > _MAX_REPORT_BYTES:
            break
    events = []
    prefix = (nonce + " ").encode()
    for line in bytes(buf).split(b"\n"):
        if not line.startswith(prefix):
            continue
        try:
            event = json.loads(line[len(prefix) :])
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, timed_out


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _same_output(actual: str, expected: str) -> bool:
    def norm(text: str) -> list[str]:
        lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    return norm(actual) == norm(expected)


def _validate_tests(tests: list) -> None:
    for test in tests:
        if isinstance(test, str):
            continue
        if (
            isinstance(test, dict)
            and isinstance(test.get("input", ""), str)
            and isinstance(test.get("output"), str)
        ):
            continue
        raise ValueError(f"A code test is an assert string or {{'input': str, 'output': str}}, got {test!r}.")


def run_python_tests(code: str, tests: list, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` against ``tests`` in a fresh sandboxed interpreter; the fraction passing is the score.

    Raises ``ValueError`` only for malformed tests (ground truth); anything the code does is contained.
    """
    limits = limits or SandboxLimits()
    _validate_tests(tests)
    return _run(_setup(limits.isolation), code, tests, limits)


def _run(setup: _Setup, code: str, tests: list, limits: SandboxLimits) -> SandboxResult:
    nonce = secrets.token_hex(16)
    request = {
        "nonce": nonce,
        "code": code,
        "tests": [t if isinstance(t, str) else {"input": t.get("input", "")} for t in tests],
        "drop_privileges": setup.drop_privileges,
        "limits": {
            "cpu_s": int(limits.cpu_s),
            "memory_bytes": int(limits.memory_mb) * 1024 * 1024,
            "file_bytes": int(limits.file_mb) * 1024 * 1024,
            "max_processes": int(limits.max_processes),
            "output_chars": _OUTPUT_CHARS,
        },
    }
    workdir = tempfile.mkdtemp(prefix="vrl-sandbox-")
    try:
        if setup.drop_privileges:
            os.chown(workdir, _NOBODY, _NOBODY)
        deadline = time.monotonic() + limits.wall_s
        proc = subprocess.Popen(
            [*setup.prefix, setup.python, "-I", "-S", "-c", _RUNNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env={},
            start_new_session=True,
        )
        try:
            assert proc.stdin is not None
            writer = threading.Thread(target=_feed, args=(proc.stdin, json.dumps(request).encode()))
            writer.start()
            events, timed_out = _read_reports(proc, nonce, deadline)
        finally:
            _kill_group(proc)
        writer.join()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _summarize(events, tests, timed_out, "namespace" if setup.prefix else "rlimits")


def _feed(stream, data: bytes) -> None:
    """Write the request in a thread so a sandbox that never reads cannot block the caller."""
    try:
        stream.write(data)
        stream.close()
    except (BrokenPipeError, OSError):
        pass


def _summarize(events: list[dict], tests: list, timed_out: bool, isolation: str) -> SandboxResult:
    compiled = any(e.get("event") == "compiled" for e in events)
    passed: set[int] = set()
    for e in events:
        index = e.get("index")
        if not isinstance(index, int) or not 0 <= index < len(tests):
            continue
        test = tests[index]
        if e.get("event") == "test" and isinstance(test, str) and e.get("ok") is True:
            passed.add(index)
        elif e.get("event") == "output" and isinstance(test, dict) and e.get("error") is False:
            stdout = e.get("stdout")
            if isinstance(stdout, str) and _same_output(stdout, test["output"]):
                passed.add(index)
    return SandboxResult(compiled, len(passed), len(tests), timed_out, isolation)
