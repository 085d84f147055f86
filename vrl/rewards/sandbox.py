"""Running untrusted Python against ground-truth tests, never in the caller's process.

Each call starts a fresh ``python -I -S -B`` (isolated mode, no site-packages: standard library only) with
an empty environment, a temporary working folder, and:

- ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE`` (``file_mb``), ``RLIMIT_NOFILE``, ``RLIMIT_NPROC`` set by
  the runner before any untrusted code runs; as root it then drops to ``nobody`` (so ``RLIMIT_NPROC``
  bites), using the first interpreter whose standard library ``nobody`` can read (this one, else the
  system ``python3``); with none, it stays root (logged);
- an audit hook refusing sockets, subprocesses, fork/exec/spawn, kill, ctypes, raising limits, heap
  introspection (``gc.get_objects``), and any filesystem change outside the working folder (the path
  policy of :func:`vrl.rewards.sandbox_runner._audit_hook`: paths resolved against the current folder or
  the call's ``dir_fd``, ``chdir`` kept inside, no directory descriptor outside, ``mkfifo``/``mknod``
  audited);
- a wall-clock limit: the whole process group is killed with ``SIGKILL``.

Isolation (``SandboxLimits.isolation``; ``auto`` takes ``namespace`` wherever it works, else ``rlimits``
with a warning; each is probed once per process):

- ``namespace``: ``unshare --mount --net --pid --mount-proc --fork --kill-child``, as root directly, else
  inside an unprivileged user namespace (``--user --map-root-user``). Before the code runs, the runner
  mounts a tmpfs of ``disk_mb`` (at most 1024 entries) over its working folder, remounts every other
  mount read-only, gives up the power to undo that (root becomes ``nobody``; a user-namespace root enters
  a nested user namespace with no mapping) and checks that ``/`` can no longer be remounted writable; any
  failed step refuses to run the code. The kernel then guarantees, whatever the code does (ctypes
  included): the private tmpfs is the only writable place, it holds at most ``disk_mb`` (``file_mb`` per
  file), it is never visible outside and vanishes with the sandbox; no network (only a down loopback);
  its own PID space, everything in it killed at the end.
- ``rlimits``: the same limits and audit hook without namespaces; the working folder is a host folder
  (deleted afterwards). Files outside it are guarded by the audit hook's path policy only, and the
  bytes by ``file_mb`` per file with at most ``disk_mb // file_mb`` files or folders created. This stops
  ordinary and naive escapes (``chdir`` then a relative ``open``/``rename``, ``os.open`` with
  ``dir_fd``, ``mkfifo``, writing hundreds of MB) but is not a security boundary: Python code can get
  around an audit hook (e.g. a fresh ``posix`` module from ``_imp``, frame introspection), there is no
  OS-level network isolation, and a process that calls ``setsid`` could outlive the wall-clock kill.

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

ISOLATIONS = ("auto", "namespace", "rlimits")
_RUNNER = (Path(__file__).with_name("sandbox_runner.py")).read_text()
_MAX_REPORT_BYTES = 4 * 1024 * 1024
_OUTPUT_CHARS = 65536
_MIB = 1024 * 1024
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
    file_mb: int = 4
    """RLIMIT_FSIZE in MiB: the largest file the code may write."""
    disk_mb: int = 64
    """All the code may write, in MiB: its tmpfs size (namespace); rlimits: disk_mb // file_mb new files."""
    isolation: str = "auto"
    """auto, namespace or rlimits (see the module docstring)."""

    def validate(self) -> None:
        if self.isolation not in ISOLATIONS:
            raise ValueError(f"Unknown sandbox isolation {self.isolation!r}; known: {', '.join(ISOLATIONS)}.")
        if self.file_mb < 1 or self.disk_mb < self.file_mb:
            raise ValueError(
                f"The sandbox needs 1 <= file_mb <= disk_mb, got file_mb={self.file_mb}, disk_mb={self.disk_mb}."
            )


_PROBE = SandboxLimits(wall_s=30.0, cpu_s=10, memory_mb=512)
_PROBE_CODE = "import math, heapq, json, re, collections, itertools"


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


@dataclass(frozen=True)
class _Setup:
    prefix: tuple[str, ...]
    """unshare command line (empty: no namespaces, isolation rlimits)."""
    python: str
    """Interpreter running the sandbox."""
    drop_privileges: bool
    """Root drops to nobody inside the sandbox."""

    @property
    def isolation(self) -> str:
        return "namespace" if self.prefix else "rlimits"


class SandboxSetupError(RuntimeError):
    """The sandbox could not isolate itself, so no code ran (an environment problem, never the code's)."""


def _namespace_prefixes() -> list[tuple[str, tuple[str, ...]]]:
    """(variant, ``unshare`` command line) to try here: as root, first without a user namespace.

    The runner makes every mount of the new mount namespace private before it mounts anything, so its
    tmpfs and read-only remounts never reach the host; it refuses to start in this process's namespace.
    """
    unshare = shutil.which("unshare") or next(
        (p for p in ("/usr/bin/unshare", "/bin/unshare") if os.access(p, os.X_OK)), None
    )
    if unshare is None:
        return []
    base = ("--mount", "--net", "--pid", "--mount-proc", "--fork", "--kill-child")
    variants = [
        ("root", (unshare, *base, "--")),
        ("user namespace", (unshare, "--user", "--map-root-user", *base, "--")),
    ]
    return variants if os.geteuid() == 0 else variants[1:]


def _mount_namespace() -> str:
    """This process's mount namespace (``mnt:[id]``): the runner refuses to remount anything inside it."""
    try:
        return os.readlink("/proc/self/ns/mnt")
    except OSError:
        return "unknown"


def _interpreters() -> list[str]:
    found = [sys.executable, getattr(sys, "_base_executable", sys.executable)]
    found += [p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)]
    return list(dict.fromkeys(found))


def _candidates(prefix: tuple[str, ...]) -> list[_Setup]:
    """Setups to probe in order: as root, each interpreter dropping to nobody, then staying root."""
    if os.geteuid() != 0:
        return [_Setup(prefix, sys.executable, False)]
    return [_Setup(prefix, python, True) for python in _interpreters()] + [
        _Setup(prefix, sys.executable, False)
    ]


def _probe(setup: _Setup) -> str | None:
    """Why ``setup`` cannot run a trivial program, or None when it can."""
    try:
        result = _run(setup, _PROBE_CODE, ["pass"], _PROBE)
    except SandboxSetupError as e:
        return str(e)
    if result.passed != 1:
        return "the probe program failed" + (" (timed out)" if result.timed_out else "")
    return None


def _choose(isolation: str) -> _Setup:
    problems: list[str] = []
    if isolation != "rlimits":
        for variant, prefix in _namespace_prefixes():
            for setup in _candidates(prefix):
                problem = _probe(setup)
                if problem is None:
                    return _chosen(setup, variant)
                problems.append(f"{variant} with {setup.python}: {problem}")
        reason = "; ".join(problems) or "no unshare command"
        if isolation == "namespace":
            raise ValueError(
                f"sandbox_isolation=namespace does not work on this machine ({reason}); it needs root or "
                "unprivileged user namespaces and mount namespaces. Use sandbox_isolation=auto or rlimits."
            )
        logger.warning(
            "Python sandbox: namespaces do not work here (%s); using isolation rlimits: files outside the "
            "sandbox folder are guarded by audit hooks only, no OS-level network isolation.",
            reason,
        )
    for setup in _candidates(()):
        problem = _probe(setup)
        if problem is None:
            return _chosen(setup, "no namespaces")
        problems.append(f"rlimits with {setup.python}: {problem}")
    raise SandboxSetupError("The Python sandbox cannot run a trivial program: " + "; ".join(problems))


def _chosen(setup: _Setup, variant: str) -> _Setup:
    if os.geteuid() == 0 and not setup.drop_privileges:
        logger.warning(
            "Python sandbox runs as root: no interpreter with a standard library readable by 'nobody' "
            "(tried %s); RLIMIT_NPROC does not bind root.",
            ", ".join(_interpreters()),
        )
    logger.info("Python sandbox: isolation %s (%s, %s)", setup.isolation, variant, setup.python)
    return setup


def _setup(isolation: str) -> _Setup:
    """The probed setup for ``isolation``, chosen once per process."""
    with _probe_lock:
        if isolation not in _probed:
            _probed[isolation] = _choose(isolation)
        return _probed[isolation]


def unavailable_reason(isolation: str) -> str | None:
    """Why ``isolation`` cannot run on this machine, or None when it can (``auto`` and ``rlimits`` can)."""
    SandboxLimits(isolation=isolation).validate()
    try:
        _setup(isolation)
    except ValueError as e:
        return str(e)
    return None


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

    Raises ``ValueError`` only for malformed tests (ground truth) or limits, and
    :class:`SandboxSetupError` when the sandbox cannot isolate itself; anything the code does is contained.
    """
    limits = limits or SandboxLimits()
    limits.validate()
    _validate_tests(tests)
    return _run(_setup(limits.isolation), code, tests, limits)


def _run(setup: _Setup, code: str, tests: list, limits: SandboxLimits) -> SandboxResult:
    nonce = secrets.token_hex(16)
    request = {
        "nonce": nonce,
        "code": code,
        "tests": [t if isinstance(t, str) else {"input": t.get("input", "")} for t in tests],
        "drop_privileges": setup.drop_privileges,
        "filesystem": "tmpfs" if setup.prefix else "host",
        "host_mount_ns": _mount_namespace(),
        # on the host the bytes are bounded by RLIMIT_FSIZE times the number of files created
        "max_entries": None if setup.prefix else limits.disk_mb // limits.file_mb,
        "limits": {
            "cpu_s": int(limits.cpu_s),
            "memory_bytes": int(limits.memory_mb) * _MIB,
            "file_bytes": int(limits.file_mb) * _MIB,
            "disk_bytes": int(limits.disk_mb) * _MIB,
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
            [*setup.prefix, setup.python, "-I", "-S", "-B", "-c", _RUNNER],
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
    return _summarize(events, tests, timed_out, setup)


def _feed(stream, data: bytes) -> None:
    """Write the request in a thread so a sandbox that never reads cannot block the caller."""
    try:
        stream.write(data)
        stream.close()
    except (BrokenPipeError, OSError):
        pass


def _summarize(events: list[dict], tests: list, timed_out: bool, setup: _Setup) -> SandboxResult:
    """Score the events after ``ready``, the runner's first line, written before any untrusted code ran."""
    first = events[0].get("event") if events else None
    if first == "setup-failed":
        raise SandboxSetupError(
            f"The Python sandbox ({setup.isolation}) could not isolate itself: {events[0].get('error')}"
        )
    if first != "ready":
        if timed_out:
            return SandboxResult(False, 0, len(tests), True, setup.isolation)
        raise SandboxSetupError(
            f"The Python sandbox ({setup.isolation}, {setup.python}) exited before it was ready."
        )
    events = events[1:]
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
    return SandboxResult(compiled, len(passed), len(tests), timed_out, setup.isolation)
