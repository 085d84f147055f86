"""The launcher reads the result files of the jobs it watches without running code from them."""

from __future__ import annotations

import pickle
from pathlib import Path

from submitit.local.local import LocalJob

from vrl.launch.launcher import failed_task


class Plant:
    """Unpickling it creates ``marker``: a crafted file would run any code the same way."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_failed_task_is_found_and_a_planted_result_never_runs(tmp_path):
    job = LocalJob(tmp_path, "123", tasks=(0, 1, 2))
    marker = tmp_path / "pwned"
    job.task(0).paths.result_pickle.parent.mkdir(parents=True, exist_ok=True)
    job.task(0).paths.result_pickle.write_bytes(pickle.dumps(("success", Plant(marker))))
    job.task(2).paths.result_pickle.write_bytes(pickle.dumps(("error", "Traceback ...: boom")))
    assert failed_task(job) == 2
    assert not marker.exists()
