"""The program that runs *inside* the Python sandbox (``python -I -S -c <this file's text>``).

Never imported by the trainer: :mod:`vrl.rewards.sandbox` reads this file's text and hands it to a fresh
interpreter (any Python >= 3.8, standard library only). Order matters: read the whole request from stdin,
set resource limits, drop root to ``nobody`` (when asked), install an audit hook refusing network,
process, ctypes and filesystem-mutating events outside the working directory, point fds 0-2 at
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
# process creation without an audit event (fork_exec) and foreign function calls
_BLOCKED_IMPORTS = {"_posixsubprocess", "_ctypes", "ctypes"}
# events whose path arguments must stay inside the working directory
_FS_EVENTS = {
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "os.chflags",
    "os.lchflags",
    "os.setxattr",
    "os.removexattr",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
    "shutil.copytree",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
NOBODY = 65534
_HOME = os.path.realpath(os.getcwd())


def _limit(kind: int, value: int) -> None:
    # a limit the platform refuses is skipped: the parent's wall-clock kill still applies
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (value, value))


def _inside(path: object) -> bool:
    if isinstance(path, int):
        return True  # an already open descriptor
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        path = os.fspath(path) if hasattr(path, "__fspath__") else str(path)
    real = os.path.realpath(os.path.join(_HOME, path))
    return real == _HOME or real.startswith(_HOME + os.sep)


def _audit(event: str, args: tuple) -> None:
    if event.startswith(_BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args and str(args[0]).split(".")[0] in _BLOCKED_IMPORTS:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open" and len(args) >= 3:
        path, mode, flags = args[0], args[1], args[2]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writes and path is not None and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} is not allowed")
    elif event in _FS_EVENTS:
        for arg in args:
            if (isinstance(arg, (str, bytes)) or hasattr(arg, "__fspath__")) and not _inside(arg):
                raise PermissionError(f"sandbox: {event} on {arg!r} is not allowed")


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    nonce, limits = request["nonce"], request["limits"]
    _limit(resource.RLIMIT_CPU, limits["cpu_s"])
    _limit(resource.RLIMIT_AS, limits["memory_bytes"])
    _limit(resource.RLIMIT_FSIZE, limits["file_bytes"])
    _limit(resource.RLIMIT_NOFILE, 64)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NPROC, limits["max_processes"])
    if request["drop_privileges"] and os.geteuid() == 0:
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
