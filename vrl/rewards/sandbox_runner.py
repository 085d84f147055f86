"""The program that runs *inside* the Python sandbox (``python -I -S -B -c <this file's text>``).

Never imported by the trainer: :mod:`vrl.rewards.sandbox` reads this file's text and hands it to a fresh
interpreter (any Python >= 3.8, standard library only). Order matters:

1. read the whole request from stdin; set resource limits (:func:`_isolate`);
2. ``filesystem=tmpfs`` (namespace isolation, started by ``unshare --mount``): check that this is not the
   parent's mount namespace, make every mount private, mount a tmpfs of ``disk_bytes`` over the working
   directory, remount every other visible mount read-only and check that none is left writable;
3. drop root to ``nobody`` (when asked); with ``filesystem=tmpfs``, a process still root in its namespace
   enters a nested user namespace with no mapping, so it holds no capability over the mounts, and the
   runner checks that ``/`` can no longer be remounted writable;
4. report ``ready`` (the first line the parent accepts) or ``setup-failed`` and exit;
5. install the audit hook (network, processes, ctypes, and the path policy of :func:`_audit_hook`),
   point fds 0-2 at /dev/null, and only then compile and run the untrusted code.

Results go to a private duplicate of the original stdout, each line prefixed by the request's nonce.
"""

import contextlib
import io
import json
import os
import resource
import signal
import stat
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
    "os.unshare",
    "os.setns",
    "pty.",
    "ctypes.",
    "resource.setrlimit",
    "resource.prlimit",
    "sys.addaudithook",
    "signal.pthread_kill",
    "webbrowser.",
    "gc.get_objects",  # would reach the audit hook's closure and the runner's state
    "gc.get_referrers",
    "gc.get_referents",
)
# process creation without an audit event (fork_exec), foreign function calls, interpreters without this
# audit hook, and C modules that create files by name without an "open" event (sqlite, dbm, readline
# history, POSIX shared memory and named semaphores in /dev/shm)
_BLOCKED_IMPORTS = {
    "_posixsubprocess",
    "_ctypes",
    "ctypes",
    "_xxsubinterpreters",
    "_xxinterpchannels",
    "_interpreters",
    "_interpchannels",
    "_testcapi",
    "_testinternalcapi",
    "_sqlite3",
    "_dbm",
    "_gdbm",
    "readline",
    "_posixshmem",
    "_multiprocessing",
}
# event -> (index of a path it changes, index of that path's dir_fd or None), ...; CPython's argument order
_PATH_EVENTS = {
    "os.chdir": ((0, None),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.link": ((0, 2), (1, 3)),
    "os.mkdir": ((0, 2),),
    "os.mkfifo": ((0, 1),),  # raised by the runner's wrapper: CPython raises none for mkfifo/mknod
    "os.mknod": ((0, 1),),
    "os.remove": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)),
    "os.rmdir": ((0, 1),),
    "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),),
    "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
}
_CREATES = {"os.link", "os.mkdir", "os.mkfifo", "os.mknod", "os.symlink"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
NOBODY = 65534

# mount(2) flags; the per-mount ones a remount must repeat (a user namespace refuses to drop locked ones)
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND = 1, 2, 4, 8, 32, 4096
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME, _MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
_KEPT = {b"nosuid": _MS_NOSUID, b"nodev": _MS_NODEV, b"noexec": _MS_NOEXEC, b"noatime": _MS_NOATIME}
_KEPT.update({b"nodiratime": _MS_NODIRATIME, b"relatime": _MS_RELATIME})
_MS_REC, _MS_PRIVATE = 1 << 14, 1 << 18
_CLONE_NEWUSER = 0x10000000
_TMPFS_INODES = 1024


def _limit(kind: int, value: int) -> None:
    # a limit the platform refuses is skipped: the parent's wall-clock kill still applies
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (value, value))


def _visible_mounts() -> list:
    """``(target, per-mount options, fs type)`` of each mount reachable by path (the topmost at its point).

    A mount covered by another on the same mount point, and everything under it, is unreachable and
    left out: it can be neither remounted by path nor written to.
    """
    mounts = {}
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            sep = fields.index(b"-")
            target = fields[4].decode("unicode_escape").encode("latin-1")  # \040-style octal escapes
            mounts[int(fields[0])] = (int(fields[1]), target, set(fields[5].split(b",")), fields[sep + 1])
    covered = {
        parent for parent, target, _, _ in mounts.values() if mounts.get(parent, (0, None))[1] == target
    }

    def hidden(mount_id: int) -> bool:
        for _ in range(len(mounts) + 1):
            if mount_id in covered:
                return True
            parent = mounts[mount_id][0]
            if parent not in mounts or parent == mount_id:
                return False
            mount_id = parent
        return True

    return [
        (target, options, fstype) for mid, (_, target, options, fstype) in mounts.items() if not hidden(mid)
    ]


def _private_filesystem(home: bytes, disk_bytes: int, owner: int, drop: bool) -> None:
    """Make ``home`` a private tmpfs of ``disk_bytes`` and everything else read-only, then shed privileges.

    Runs as root of a fresh mount namespace. Raises ``OSError``/``RuntimeError`` when any step fails, so
    the parent never runs code in a half-isolated sandbox.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def mount(source, target, fstype, flags, data) -> None:
        if libc.mount(source, target, fstype, flags, data) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), os.fsdecode(target))

    # nothing mounted here may propagate to the host, whatever unshare's default propagation is
    mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None)
    options = f"size={disk_bytes},nr_inodes={_TMPFS_INODES},mode=0700,uid={owner},gid={owner}"
    mount(b"tmpfs", home, b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options.encode())
    os.chdir(home)  # the old working directory is the host folder under the new mount
    for target, options, _ in _visible_mounts():
        if target == home or b"ro" in options:
            continue
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
        for name, bit in _KEPT.items():
            if name in options:
                flags |= bit
        if not options & {b"noatime", b"relatime"}:
            flags |= _MS_STRICTATIME
        mount(None, target, None, flags, None)
    writable = [t for t, o, fstype in _visible_mounts() if b"ro" not in o and (t, fstype) != (home, b"tmpfs")]
    if writable or (home, b"tmpfs") not in [(t, fstype) for t, _, fstype in _visible_mounts()]:
        raise RuntimeError(f"mounts left writable: {writable!r}")
    if drop and os.geteuid() == 0:
        _drop_root()
    if os.geteuid() == 0 and libc.unshare(_CLONE_NEWUSER) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, "nested user namespace: " + os.strerror(errno))
    if libc.mount(None, b"/", None, _MS_REMOUNT | _MS_BIND, None) == 0:
        raise RuntimeError("the sandbox could still remount / writable")


def _drop_root() -> None:
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    except OSError:
        pass  # inside a user namespace without a mapping for nobody


def _audit_hook(home: str, max_entries, audit_names: frozenset):
    """The audit hook: refuses the blocked events and any filesystem change outside ``home``.

    Path policy (the only filesystem guard with ``filesystem=host``): a path is resolved against the
    *current* directory (or the event's ``dir_fd``) with a private realpath built from functions captured
    now, so neither ``os.chdir`` nor monkeypatching ``os`` changes what is checked; ``os.chdir`` stays
    inside ``home``; opening a directory outside ``home`` is refused, so no ``dir_fd`` can point outside;
    the ``open`` event does not carry its ``dir_fd``, so a relative path there may not contain ``..``.
    With ``max_entries`` (``filesystem=host``), at most that many files, folders, links or FIFOs may be
    created: with RLIMIT_FSIZE per file that bounds the bytes written.
    """
    lstat, stat_of, readlink, getcwd = os.lstat, os.stat, os.readlink, os.getcwd
    fsdecode, fspath = os.fsdecode, os.fspath
    is_link, is_dir = stat.S_ISLNK, stat.S_ISDIR
    prefix = home + "/"
    created = [0]

    def realpath(path: str):
        parts, resolved = path.split("/"), ""
        for _ in range(40):
            while parts:
                part = parts.pop(0)
                if part in ("", "."):
                    continue
                if part == "..":
                    resolved = resolved.rsplit("/", 1)[0]
                    continue
                candidate = resolved + "/" + part
                try:
                    is_symlink = is_link(lstat(candidate).st_mode)
                except (OSError, ValueError):
                    is_symlink = False
                if not is_symlink:
                    resolved = candidate
                    continue
                target = readlink(candidate)
                resolved = "" if target.startswith("/") else resolved
                parts = target.split("/") + parts
                break
            else:
                return resolved or "/"
        return None  # a symlink loop

    def resolve(path, dir_fd):
        """The real absolute path that ``path`` names, or None when it cannot be known."""
        try:
            if isinstance(path, int):
                return realpath(readlink(f"/proc/self/fd/{path}"))
            text = fsdecode(fspath(path))
            if text.startswith("/"):
                return realpath(text)
            base = getcwd() if dir_fd in (None, -1) else readlink(f"/proc/self/fd/{dir_fd}")
            return realpath(base + "/" + text)
        except (OSError, TypeError, ValueError):
            return None

    def inside(real) -> bool:
        return real is not None and (real == home or real.startswith(prefix))

    def refuse(event: str, path) -> None:
        raise PermissionError(f"sandbox: {event} on {path!r} is not allowed")

    def count(event: str) -> None:
        if max_entries is not None:
            if created[0] >= max_entries:
                raise PermissionError(f"sandbox: at most {max_entries} files or folders may be created")
            created[0] += 1

    def hook(event: str, args: tuple) -> None:
        if event.startswith(_BLOCKED):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args and str(args[0]).split(".")[0] in _BLOCKED_IMPORTS:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            if path is None or isinstance(path, int):
                return  # wraps a descriptor already open
            try:
                text = fsdecode(fspath(path))
            except TypeError:
                refuse(event, path)
            if not text.startswith("/") and ".." in text.split("/"):
                refuse(event, path)
            real = resolve(text, None)
            flags = flags if isinstance(flags, int) else 0
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or flags & _WRITE_FLAGS:
                if not inside(real):
                    refuse(event, path)
                try:
                    lstat(real)
                    new = _O_TMPFILE != 0 and flags & _O_TMPFILE == _O_TMPFILE
                except OSError:
                    new = True
                if new:
                    count(event)
            elif not inside(real):
                try:
                    directory = real is None or is_dir(stat_of(real).st_mode)
                except OSError:
                    directory = False
                if directory:
                    refuse(event, path)
        elif event in audit_names:
            for index, fd_index in _PATH_EVENTS[event]:
                if index < len(args):
                    dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
                    if not inside(resolve(args[index], dir_fd)):
                        refuse(event, args[index])
            if event == "os.symlink":
                target = fsdecode(fspath(args[0]))
                if (target.startswith("/") and not inside(realpath(target))) or ".." in target.split("/"):
                    refuse(event, args[0])
            if event in _CREATES:
                count(event)

    return hook


def _audited(module, name: str) -> None:
    """Replace ``module.name`` (mkfifo, mknod) by a wrapper raising the audit event CPython does not."""
    original, audit = getattr(module, name, None), sys.audit
    if original is None:
        return

    def wrapper(path, *args, dir_fd=None, **kwargs):
        audit("os." + name, path, dir_fd)
        return original(path, *args, dir_fd=dir_fd, **kwargs)

    wrapper.__name__ = name
    setattr(module, name, wrapper)


def _isolate(request: dict) -> None:
    """Limits, the private filesystem (``filesystem=tmpfs``) and the privilege drop, before any untrusted code."""
    limits = request["limits"]
    _limit(resource.RLIMIT_CPU, limits["cpu_s"])
    _limit(resource.RLIMIT_AS, limits["memory_bytes"])
    _limit(resource.RLIMIT_FSIZE, limits["file_bytes"])
    _limit(resource.RLIMIT_NOFILE, 64)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NPROC, limits["max_processes"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails with EFBIG instead
    drop = request["drop_privileges"]
    if request["filesystem"] == "tmpfs":
        host = request["host_mount_ns"]
        if not host.startswith("mnt:") or os.readlink("/proc/self/ns/mnt") == host:
            raise RuntimeError("not in a private mount namespace: refusing to remount the host's mounts")
        owner = NOBODY if drop and os.geteuid() == 0 else os.geteuid()
        _private_filesystem(os.fsencode(os.path.realpath(os.getcwd())), limits["disk_bytes"], owner, drop)
    if drop and os.geteuid() == 0:
        _drop_root()
    for name in [name for name in sys.modules if name.split(".")[0] in _BLOCKED_IMPORTS]:
        del sys.modules[name]  # the setup's ctypes: importing it again must reach the audit hook


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    nonce, limits = request["nonce"], request["limits"]
    out = os.dup(1)
    write, dumps = os.write, json.dumps

    def report(**event: object) -> None:
        write(out, (nonce + " " + dumps(event) + "\n").encode())

    try:
        _isolate(request)
    except (OSError, RuntimeError, ImportError, AttributeError, ValueError) as e:
        report(event="setup-failed", error=f"{type(e).__name__}: {e}")
        os._exit(0)
    home = os.path.realpath(os.getcwd())
    report(event="ready", filesystem=request["filesystem"], uid=os.geteuid())
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    import posix

    for module in (os, posix):
        _audited(module, "mkfifo")
        _audited(module, "mknod")
    sys.modules["__main__"] = type(sys)("__main__")  # the code must not reach the runner's globals
    sys.addaudithook(_audit_hook(home, request["max_entries"], frozenset(_PATH_EVENTS)))
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
