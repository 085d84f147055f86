"""Slurm cluster profiles: ``slurm/profiles/<name>.yaml`` read into a typed schema."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrl.config import ConfigError, merge

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SlurmProfile:
    partition: str | None = None
    """Partition (sbatch --partition); null takes the cluster default."""
    account: str | None = None
    """Account to charge (sbatch --account)."""
    qos: str | None = None
    """Quality of service (sbatch --qos)."""
    time_min: int = 60
    """Time limit per job in minutes."""
    mem_gb: int | None = None
    """Memory per node in GB; null takes the cluster default."""
    cpus_per_task: int = 1
    """CPUs per task."""
    gpus_per_task: int = 0
    """GPUs per task."""
    gpu_memory_gb: float | None = None
    """Memory of one GPU in GiB as nvidia-smi reports it (80 for an 80 GB A100/H100): stage=train checks its
    memory plan against it before submitting (vrl.planner). null: not checked."""
    nodes: int = 1
    """Default nodes per job (a run's nodes=... overrides)."""
    tasks_per_node: int = 1
    """Default tasks per node (a run's tasks_per_node=... overrides)."""
    signal_delay_s: int = 120
    """Seconds before the time limit at which USR2 asks the job to checkpoint and requeue."""
    additional: dict[str, Any] = field(default_factory=dict)
    """Extra sbatch options, e.g. {constraint: a100, exclusive: true}."""
    setup: list[str] = field(default_factory=list)
    """Shell lines run in the batch script before the job (module load, conda activate, exports)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment for the launcher's Slurm client calls (sbatch, sacct), e.g. SLURM_CONF; set variables win."""


def profiles_dir() -> Path:
    return Path(os.environ.get("VRL_PROFILES_DIR", REPO_ROOT / "slurm" / "profiles"))


def available_profiles() -> list[str]:
    d = profiles_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_profile(name: str) -> SlurmProfile:
    """``name`` is a profile in ``slurm/profiles/`` or a path to a YAML file."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = profiles_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available_profiles()) or "(none)"
        raise ConfigError(
            f"Slurm profile '{name}' not found (looked for {path}). Known profiles: {known}. "
            f"Create slurm/profiles/{name}.yaml from slurm/profiles/example.yaml."
        )
    try:
        return merge(SlurmProfile(), [path])
    except ConfigError as e:
        raise ConfigError(f"In Slurm profile {path}: {e}") from e
