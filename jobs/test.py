#!/usr/bin/env python3
"""Run the project's checks: ``python jobs/test.py [tier=ci|default|integration|slow|gpu|all] [pytest args]``.

Tiers: ``default`` (CPU, offline, fast), ``integration`` (real local Slurm cluster, vLLM engine,
multi-process), ``slow`` (long runs, benchmark scripts). ``ci`` (the default) = ruff lint + format check,
then all three tiers (1,928 tests, 38–51 min on 2 cores): what ``.ci/run`` runs on every clean clone;
``all``: the three tiers without ruff. ``tier=gpu``: every test marked ``gpu`` across the project (CUDA
vLLM with sleep/wake and weight sync, FSDP2 in bf16 with nccl, Megatron in bf16, ...), for a machine with
one GPU, unattended, in under 10 minutes; without CUDA each test is skipped with its reason. It writes
the pytest output to ``runs/gpu-tier/pytest.log`` and next to it ``runs/gpu-tier/results.md`` (test,
outcome, seconds, peak GPU memory). No CPU tier selects ``gpu`` tests. The first call installs everything (Debian packages incl.
Slurm/MariaDB/Open MPI, and the pinned virtual environment).
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
    "default": "not integration and not slow and not gpu",
    "integration": "integration and not slow and not gpu",
    "slow": "slow and not gpu",
    "gpu": "gpu",
    "ci": "not gpu",
    "all": "not gpu",
}
GPU_DIR = ROOT / "runs" / "gpu-tier"


def _run_gpu_tier(cmd: list[str], env: dict[str, str]) -> int:
    """pytest with its output copied to runs/gpu-tier/pytest.log; the conftest plugin writes results.md."""
    GPU_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(env, VRL_GPU_REPORT=str(GPU_DIR / "results.md"))
    with open(GPU_DIR / "pytest.log", "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        status = proc.wait()
    print(f"gpu tier: {GPU_DIR / 'pytest.log'} and {GPU_DIR / 'results.md'}", flush=True)
    return status


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
    pytest = [sys.executable, "-m", "pytest", "-m", MARKERS[tier]]
    print("$", " ".join(pytest + rest), flush=True)
    if tier == "gpu":
        return _run_gpu_tier(pytest + rest, env)
    return subprocess.run(pytest + rest, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
