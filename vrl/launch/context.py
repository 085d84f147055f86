"""What a running stage knows about where and as what it runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunContext:
    run_dir: Path
    """The run folder: resolved config, submitit logs, outputs."""
    task_index: int = 0
    """Array stages: index of this task in the plan; 0 otherwise."""
    num_tasks: int = 1
    """Array stages: number of tasks in the plan; 1 otherwise."""
    rank: int = 0
    """Global rank inside a (multi-process) job."""
    world_size: int = 1
    """Processes in this job."""
    local_rank: int = 0
    """Rank on this node."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, run_dir: Path, task_index: int = 0, num_tasks: int = 1) -> RunContext:
        """Read rank/world size from torch.distributed variables (set by the launcher) or defaults."""
        return cls(
            run_dir=Path(run_dir),
            task_index=task_index,
            num_tasks=num_tasks,
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )
