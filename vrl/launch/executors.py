"""submitit executors for ``cluster=local|slurm|debug``, configured from the run config and a profile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import submitit

from vrl.config import ConfigError
from vrl.launch.config import LaunchConfig
from vrl.launch.profiles import SlurmProfile, load_profile

LOCAL_TIMEOUT_MIN = 7 * 24 * 60


class SlurmUnavailable(ConfigError):
    """cluster=slurm was asked for but Slurm cannot be reached from here."""


def check_slurm(env: dict[str, str] | None = None) -> None:
    """Fail early, with advice, when sbatch is missing or the controller does not answer."""
    if shutil.which("sbatch") is None:
        raise SlurmUnavailable(
            "cluster=slurm, but `sbatch` is not on PATH: this machine is not a Slurm login node. "
            "Run on this machine with cluster=local, or start the single-node test cluster: "
            "bash slurm/local/start.sh (see slurm/local/README.md)."
        )
    try:
        out = subprocess.run(
            ["scontrol", "ping"],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SlurmUnavailable(f"cluster=slurm, but `scontrol ping` failed ({e}). Use cluster=local.") from e
    if out.returncode != 0 or "UP" not in out.stdout:
        detail = (out.stdout + out.stderr).strip().splitlines()
        raise SlurmUnavailable(
            "cluster=slurm, but the Slurm controller is unreachable"
            + (f" ({detail[-1]})" if detail else "")
            + ". Check SLURM_CONF / the profile's `env`, or use cluster=local."
        )


def apply_profile_env(profile: SlurmProfile) -> None:
    """Client calls made by submitit (sbatch, sacct, scontrol) read the process environment; variables
    already set by the user win over the profile's."""
    for key, value in profile.env.items():
        os.environ.setdefault(key, str(value))


def make_executor(cfg: LaunchConfig, folder: Path, name: str) -> submitit.Executor:
    """An executor whose jobs write logs under ``folder`` (``%j`` = job id)."""
    folder = Path(folder) / "%j"
    nodes, tasks_per_node = cfg.layout()
    if cfg.cluster == "debug":
        if nodes * tasks_per_node > 1:
            raise ConfigError("cluster=debug runs in this process: it cannot run nodes × tasks_per_node > 1.")
        return submitit.DebugExecutor(folder=folder)
    if cfg.cluster == "local":
        if nodes > 1:
            raise ConfigError("cluster=local runs on this machine: nodes must be 1 (use tasks_per_node).")
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(
            timeout_min=cfg.timeout_min or LOCAL_TIMEOUT_MIN,
            tasks_per_node=tasks_per_node,
            nodes=1,
            name=name,
        )
        return ex
    profile = load_profile(cfg.profile)
    apply_profile_env(profile)
    check_slurm()
    ex = submitit.SlurmExecutor(folder=folder)
    params: dict = {
        "job_name": name,
        "time": cfg.timeout_min or profile.time_min,
        "nodes": nodes,
        "ntasks_per_node": tasks_per_node,
        "cpus_per_task": profile.cpus_per_task,
        "signal_delay_s": profile.signal_delay_s,
        "array_parallelism": cfg.array_parallelism,
        "setup": list(profile.setup),
        # one failed rank (e.g. a port clash at rendezvous) ends the step instead of leaving peers hanging
        "srun_args": ["--kill-on-bad-exit=1"],
        "additional_parameters": dict(profile.additional),
    }
    for key in ("partition", "account", "qos"):
        value = getattr(profile, key)
        if value:
            params[key] = value
    if profile.mem_gb:
        params["mem"] = f"{profile.mem_gb}GB"
    if profile.gpus_per_task:
        params["gpus_per_task"] = profile.gpus_per_task
    ex.update_parameters(**params)
    return ex
