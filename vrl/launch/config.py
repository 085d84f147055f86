"""Launch settings shared by every stage; each stage's schema inherits them, so they stay top-level keys."""

from __future__ import annotations

from dataclasses import dataclass

from vrl.config import choice

#: array stages refuse more tasks than this: Slurm's largest job array (MaxArraySize caps at 4000001)
MAX_ARRAY_TASKS = 4_000_000


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
    nodes: int = 0
    """Nodes per job; 0: the Slurm profile's value (1 for cluster=local/debug)."""
    tasks_per_node: int = 0
    """Processes per node (the torch.distributed world is nodes × tasks_per_node); 0: the profile's value (1 locally)."""
    array_parallelism: int = 16
    """Array stages: how many array tasks may run at once."""
    timeout_min: int = 0
    """Job time limit in minutes; 0 takes the profile's."""
    log_level: str = choice("INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
    """Project log level."""

    def layout(self) -> tuple[int, int]:
        """(nodes, tasks_per_node) after applying the Slurm profile's defaults."""
        nodes, tasks = self.nodes, self.tasks_per_node
        if (not nodes or not tasks) and self.cluster == "slurm":
            from vrl.launch.profiles import load_profile

            profile = load_profile(self.profile)
            nodes, tasks = nodes or profile.nodes, tasks or profile.tasks_per_node
        return nodes or 1, tasks or 1

    def validate(self) -> None:
        if self.nodes < 0 or self.tasks_per_node < 0:
            raise ValueError("nodes and tasks_per_node must be >= 0 (0: the profile's value)")
        if self.array_parallelism < 1 or self.timeout_min < 0:
            raise ValueError("array_parallelism must be >= 1 and timeout_min >= 0 (0: the profile's)")
