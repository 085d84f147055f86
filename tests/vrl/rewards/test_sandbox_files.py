"""The Python sandbox keeps its files: one private, size-capped writable folder, nothing else writable.

Each escape runs in every isolation mode this machine offers: ``namespace`` (the default variant here:
as root without a user namespace), ``user namespace`` (the variant an unprivileged account gets, forced
here even as root) and ``rlimits`` (audit hooks and the path policy only). The target folder is
world-writable and reachable by the sandbox user, so only the sandbox's own rules can stop a write.
"""

import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from vrl.rewards import sandbox
from vrl.rewards.sandbox import SandboxLimits, SandboxSetupError, run_python_tests, unavailable_reason

MODES = ("namespace", "user namespace", "rlimits")
LIMITS = {"wall_s": 20.0, "cpu_s": 10, "memory_mb": 256, "file_mb": 4, "disk_mb": 64}


def _user_namespace_setup() -> sandbox._Setup:
    """The unprivileged variant (``unshare --user --map-root-user``), forced even when running as root."""
    if os.geteuid() != 0:
        pytest.skip("not root: the namespace mode already is the user-namespace variant")
    prefixes = dict(sandbox._namespace_prefixes())
    if "user namespace" not in prefixes:
        pytest.skip("no unshare command on this machine")
    setup = sandbox._Setup(prefixes["user namespace"], sys.executable, False)
    problem = sandbox._probe(setup)
    if problem is not None:
        pytest.skip(f"unprivileged user namespaces do not work here: {problem}")
    return setup


def run(mode: str, code: str, tests: list, **limits) -> sandbox.SandboxResult:
    limits = SandboxLimits(**{**LIMITS, **limits, "isolation": "namespace" if mode != "rlimits" else mode})
    if mode == "user namespace":
        result = sandbox._run(_user_namespace_setup(), code, tests, limits)
    else:
        reason = unavailable_reason(limits.isolation)
        if reason is not None:
            pytest.skip(reason)
        result = run_python_tests(code, tests, limits)
    assert result.isolation == limits.isolation
    return result


@pytest.fixture
def outside():
    """A folder outside the sandbox that the sandbox user could write to if nothing stopped it."""
    base = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()  # /tmp: traversable by nobody
    path = Path(tempfile.mkdtemp(prefix="vrl-escape-", dir=base))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


ESCAPES = {
    "chdir then relative open": """
        os.chdir(T)
        open("escaped", "w").write("x")
    """,
    "chdir then rename": """
        open("mine", "w").write("x")
        home = os.getcwd()
        os.chdir(T)
        os.rename(os.path.join(home, "mine"), "escaped")
    """,
    "os.open with dir_fd": """
        fd = os.open(T, os.O_RDONLY)
        os.close(os.open("escaped", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    """,
    "os.mkfifo": """
        os.mkfifo(os.path.join(T, "escaped"))
    """,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("escape", ESCAPES)
def test_code_cannot_write_outside_its_folder(mode, escape, outside):
    body = textwrap.indent(textwrap.dedent(ESCAPES[escape]), "    ")
    code = f"import os\nT = {str(outside)!r}\n\ndef attempt():\n{body}"
    # the first test shows the folder is there and readable: only the sandbox's rules stop the write
    result = run(mode, code, ["assert os.path.isdir(T) and os.access(T, os.R_OK)", "attempt()"])
    assert (result.compiled, result.passed, result.total) == (True, 1, 2)
    assert list(outside.iterdir()) == []


FILL = """
import os

def fill():
    chunk = b"x" * 2**20
    for i in range(50):  # 50 files of 8 MiB: 400 MiB if nothing stops it
        try:
            with open(f"fill{i}", "wb") as f:
                for _ in range(8):
                    f.write(chunk)
        except OSError:
            pass
    return sum(os.path.getsize(name) for name in os.listdir("."))
"""


@pytest.mark.parametrize("mode", MODES)
def test_code_cannot_write_hundreds_of_megabytes(mode):
    # at least one full file (4 MiB) fits, never more than disk_mb in all
    result = run(mode, FILL, ["assert 4 * 2**20 <= fill() <= 64 * 2**20"], file_mb=4, disk_mb=64)
    assert (result.passed, result.timed_out) == (1, False)


NORMAL = """
import os, sys, tempfile

n = int(sys.stdin.readline())
with open("scratch.txt", "w") as f:
    f.write(str(2 * n))
os.makedirs("sub/dir", exist_ok=True)
os.rename("scratch.txt", "sub/dir/kept.txt")
with tempfile.TemporaryDirectory() as folder:  # /tmp is refused, so it lands in the working folder
    with open(os.path.join(folder, "t"), "w") as f:
        f.write("t")
print(open("sub/dir/kept.txt").read())
"""


@pytest.mark.parametrize("mode", MODES)
def test_normal_code_reads_stdin_prints_and_keeps_scratch_files(mode):
    result = run(mode, NORMAL, [{"input": "21\n", "output": "42\n"}, {"input": "5\n", "output": "10\n"}])
    assert (result.compiled, result.passed, result.total) == (True, 2, 2)


@pytest.mark.parametrize("mode", ("namespace", "user namespace"))
def test_namespace_holds_when_the_audit_hook_is_bypassed(mode, outside):
    # a fresh posix module has an unwrapped mkfifo (CPython raises no audit event for it): the path
    # policy never sees the call, the read-only mounts still refuse it
    code = (
        "import _imp, os, types\n"
        f"T = {str(outside)!r}\n"
        "posix = _imp.create_builtin(types.SimpleNamespace(name='posix', origin=None))\n"
        "def attempt(path):\n"
        "    try:\n"
        "        posix.mkfifo(path)\n"
        "    except OSError as e:\n"
        "        return e.errno\n"
    )
    tests = [
        "import errno\nassert attempt(os.path.join(T, 'escaped')) == errno.EROFS",
        "assert attempt('mine') is None",
    ]
    result = run(mode, code, tests)
    assert result.passed == 2
    assert list(outside.iterdir()) == []


def test_runner_refuses_to_remount_outside_a_private_mount_namespace():
    # the runner is started without unshare: it must refuse before touching a mount (as root it is
    # started as nobody, so a broken check could not remount this machine's filesystems either)
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("no setpriv to start the runner as nobody")
        prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
        chosen = sandbox._setup("rlimits")
        if not chosen.drop_privileges:
            pytest.skip("no interpreter here whose standard library nobody can read")
        python = chosen.python
    else:
        prefix, python = ("env",), sys.executable
    setup = sandbox._Setup(prefix, python, os.geteuid() == 0)
    with pytest.raises(SandboxSetupError, match="not in a private mount namespace"):
        sandbox._run(setup, "x = 1", ["assert x == 1"], SandboxLimits(**LIMITS))


def test_limits_and_modes_are_checked():
    with pytest.raises(ValueError, match="known: auto, namespace, rlimits"):
        unavailable_reason("chroot")
    with pytest.raises(ValueError, match="file_mb <= disk_mb"):
        run_python_tests("x = 1", ["assert x"], SandboxLimits(file_mb=8, disk_mb=4))
    assert unavailable_reason("rlimits") is None


def test_auto_falls_back_to_rlimits_when_namespaces_fail(monkeypatch, caplog):
    # a machine without namespace permission, as some CI runners are: 'false' exits before the runner starts
    monkeypatch.setattr(sandbox, "_namespace_prefixes", lambda: [("no permission", ("false",))])
    monkeypatch.setattr(sandbox, "_probed", {})
    assert "no permission with" in unavailable_reason("namespace")
    with pytest.raises(ValueError, match="Use sandbox_isolation=auto or rlimits"):
        run_python_tests("x = 1", ["assert x == 1"], SandboxLimits(isolation="namespace"))
    with caplog.at_level("WARNING", logger="vrl.rewards.sandbox"):
        result = run_python_tests("x = 1", ["assert x == 1"], SandboxLimits(isolation="auto"))
    assert (result.isolation, result.passed) == ("rlimits", 1)
    assert "namespaces do not work here" in caplog.text
