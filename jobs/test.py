#!/usr/bin/env python3
"""Run the project's checks: ``python jobs/test.py [tier=ci|default|integration|slow|all] [pytest args]``.

Tiers: ``default`` (CPU, offline, fast), ``integration`` (real local Slurm cluster, vLLM engine,
multi-process), ``slow`` (long runs, benchmark scripts). ``ci`` (the default) = ruff lint + format check,
then all three tiers (18-19 min on 2 cores): what ``.ci/run`` runs on every clean clone; ``all``: the three
tiers without ruff. The first call installs everything
(Debian packages incl. Slurm/MariaDB/Open MPI, and the pinned virtual environment).
"""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap

_bootstrap.ensure("test")

ROOT = Path(__file__).resolve().parent.parent
MARKERS = {
    "default": "not integration and not slow",
    "integration": "integration and not slow",
    "slow": "slow",
    "ci": "",
    "all": "",
}


def main(argv: list[str]) -> int:
    tier = "ci"
    rest = []
    for arg in argv:
        if arg.startswith("tier="):
            tier = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if tier not in MARKERS:
        sys.stderr.write(f"error: unknown tier '{tier}'. Known tiers: {', '.join(MARKERS)}.\n")
        return 2
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if tier == "ci" and not rest:
        for cmd in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
            print("$", " ".join(cmd), flush=True)
            if subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], cwd=ROOT, env=env).returncode:
                return 1
    pytest = (
        [sys.executable, "-m", "pytest", "-m", MARKERS[tier]]
        if MARKERS[tier]
        else [sys.executable, "-m", "pytest"]
    )
    print("$", " ".join(pytest + rest), flush=True)
    return subprocess.run(pytest + rest, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
