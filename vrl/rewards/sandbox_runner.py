"""The program that runs *inside* the Python sandbox (``python -I -S -c <this file's text>``).

Never imported by the trainer: :mod:`vrl.rewards.sandbox` reads this file's text and hands it to a fresh
interpreter. Standard library only. Order matters: read the whole request from stdin, set resource limits,
drop root to ``nobody``, install an audit hook refusing network/process/ctypes events, point fds 0-2 at
/dev/null, and only then compile and run the untrusted code. Results go to a private duplicate of the
original stdout, each line prefixed by the request's nonce.
"""

import contextlib
import io
import json
import os
import resource
import sys

_BLOCKED = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "pty.",
    "ctypes.",
    "resource.setrlimit",
    "resource.prlimit",
    "sys.addaudithook",
    "signal.pthread_kill",
    "webbrowser.",
)
NOBODY = 65534


def _limit(kind: int, value: int) -> None:
    # a limit the platform refuses is skipped: the parent's wall-clock kill still applies
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (value, value))


def _audit(event: str, args: tuple) -> None:
    if event.startswith(_BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    nonce, limits = request["nonce"], request["limits"]
    _limit(resource.RLIMIT_CPU, limits["cpu_s"])
    _limit(resource.RLIMIT_AS, limits["memory_bytes"])
    _limit(resource.RLIMIT_FSIZE, limits["file_bytes"])
    _limit(resource.RLIMIT_NOFILE, 64)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NPROC, limits["max_processes"])
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        except OSError:
            pass  # inside a user namespace without a mapping for nobody
    out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    write = os.write
    dumps = json.dumps

    def report(**event: object) -> None:
        write(out, (nonce + " " + dumps(event) + "\n").encode())

    sys.addaudithook(_audit)
    try:
        code = compile(request["code"], "<solution>", "exec")
    except BaseException:  # SyntaxError, ValueError (NUL bytes), RecursionError, MemoryError
        report(event="syntax")
        os._exit(0)
    report(event="compiled")
    tests = request["tests"]
    if any(isinstance(t, str) for t in tests):
        namespace = {"__name__": "solution"}
        try:
            exec(code, namespace)
        except BaseException:
            report(event="load-error")
            os._exit(0)
    for index, test in enumerate(tests):
        if isinstance(test, str):
            ok = False
            try:
                exec(compile(test, f"<test {index}>", "exec"), namespace)
                ok = True
            except BaseException:
                pass
            report(event="test", index=index, ok=ok)
        else:
            stdout = io.StringIO()
            sys.stdin, sys.stdout = io.StringIO(test["input"]), stdout
            error = False
            try:
                exec(code, {"__name__": "__main__"})
            except SystemExit as e:
                error = e.code not in (None, 0)
            except BaseException:
                error = True
            sys.stdin, sys.stdout = sys.__stdin__, sys.__stdout__
            report(
                event="output", index=index, error=error, stdout=stdout.getvalue()[: limits["output_chars"]]
            )
    report(event="done")
    os._exit(0)


main()
