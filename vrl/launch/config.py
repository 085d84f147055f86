"""Launch settings shared by every stage; each stage's schema inherits them, so they stay top-level keys."""

from __future__ import annotations

from dataclasses import dataclass

from vrl.config import choice


@dataclass
class LaunchConfig:
    cluster: str = choice("local", ["local", "slurm", "debug"])
    """Executor: local (subprocesses on this machine), slurm (sbatch through submitit), debug (in process)."""
    profile: str = "local"
    """Slurm cluster profile: slurm/profiles/<profile>.yaml (only with cluster=slurm)."""
    name: str = ""
    """Run name; the run folder is <run_root>/<stage>/<name>/. Empty: a timestamp. Reusing a name resumes."""
    run_root: str = "runs"
    """Folder holding all runs."""
    wait: bool = False
    """Block until the job ends, show progress, exit with the job's status (always on for cluster=local/debug)."""
    nodes: int = 1
    """Nodes per job (distributed stages)."""
    tasks_per_node: int = 1
    """Processes per node (distributed stages): the torch.distributed world is nodes × tasks_per_node."""
    array_parallelism: int = 16
    """Array stages: how many array tasks may run at once."""
    timeout_min: int = 0
    """Job time limit in minutes; 0 takes the profile's."""
    log_level: str = choice("INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
    """Project log level."""
