"""jobs/submit.py against the real local Slurm cluster: one job, a 4-task array, and a requeue that resumes.

No mocks: sbatch, slurmctld, slurmd and slurmdbd run (fixture ``slurm_cluster``), states come from sacct.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def submit(cluster, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *args, "cluster=slurm", "profile=local"],
        cwd=cwd,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def job_ids(stdout: str, stage: str = "smoke") -> list[str]:
    return re.findall(rf"submitted (?:{stage}|finalize): job (\S+)", stdout)


def test_one_job_and_finalize_complete(slurm_cluster, tmp_path):
    out = submit(
        slurm_cluster,
        "stage=smoke",
        "steps=2",
        "step_seconds=0",
        "wait=true",
        f"run_root={tmp_path}",
        "name=one",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    ids = job_ids(out.stdout)
    assert len(ids) == 2  # the task (an array of one) and the finalize job that depends on it
    for job in ids:
        assert slurm_cluster.wait_state(job, ["COMPLETED"], timeout=60) == "COMPLETED"
    assert json.loads((tmp_path / "smoke" / "one" / "smoke" / "summary.json").read_text()) == {
        "tasks": 1,
        "steps": 2,
    }


def test_four_task_array_runs_as_a_job_array(slurm_cluster, tmp_path):
    out = submit(
        slurm_cluster, "stage=smoke", "num_tasks=4", "steps=2", "step_seconds=0", "wait=true",
        f"run_root={tmp_path}", "name=arr", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    ids = job_ids(out.stdout)
    tasks = [j for j in ids if "_" in j]
    assert len(tasks) == 4 and len({t.split("_")[0] for t in tasks}) == 1, ids  # one array, 4 tasks
    for job in ids:
        assert slurm_cluster.wait_state(job, ["COMPLETED"], timeout=60) == "COMPLETED"
    results = [
        json.loads((tmp_path / "smoke" / "arr" / "smoke" / f"task_{i}.json").read_text()) for i in range(4)
    ]
    assert {r["result"]["array_job_id"] for r in results} == {t.split("_")[0] for t in tasks}
    assert sorted(r["result"]["array_task_id"] for r in results) == ["0", "1", "2", "3"]
    assert all(r["step"] == 2 for r in results)


def test_two_task_job_forms_a_torch_distributed_world(slurm_cluster, tmp_path):
    out = submit(
        slurm_cluster, "stage=smoke", "tasks_per_node=2", "steps=1", "step_seconds=0", "wait=true",
        f"run_root={tmp_path}", "name=dist", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads((tmp_path / "smoke" / "dist" / "smoke" / "task_0.json").read_text())["result"]
    assert (result["world_size"], result["rank_sum"]) == (2, 1)


def _wait_step(path: Path, at_least: int, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            state = json.loads(path.read_text())
            if state.get("step", 0) >= at_least:
                return state
        time.sleep(0.5)
    raise AssertionError(f"{path} never reached step {at_least}")


def test_requeued_job_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    out = submit(
        slurm_cluster, "stage=smoke", "steps=20", "step_seconds=0.5", "wait=false",
        f"run_root={tmp_path}", "name=rq", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    task, final = job_ids(out.stdout)
    state_file = tmp_path / "smoke" / "rq" / "smoke" / "task_0.json"
    _wait_step(state_file, 4)
    for _ in range(2):  # a requeue racing the job's start can be refused once
        res = slurm_cluster.run("scontrol", "requeue", task, check=False)
        if res.returncode == 0:
            break
        time.sleep(2)
    assert res.returncode == 0, res.stderr
    slurm_cluster.release(task)
    slurm_cluster.wait_state(task, ["COMPLETED"], timeout=300)
    slurm_cluster.wait_state(final, ["COMPLETED"], timeout=300)
    state = json.loads(state_file.read_text())
    assert state["step"] == 20 and state["starts"] == 2
    assert 4 <= state["result"]["resumed_from"] < 20
    assert "REQUEUED" in slurm_cluster.sacct_states(task, duplicates=True)


def test_toy_stage_on_slurm_waits_and_returns_the_job_status(slurm_cluster, tmp_path):
    out = submit(
        slurm_cluster, "stage=toy", "num_train=4", "num_val=2", "families=[color]", f"out={tmp_path / 'suite'}",
        "wait=true", f"run_root={tmp_path}", "name=toy", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "suite" / "manifest.json").exists()
    (job,) = job_ids(out.stdout, stage="toy")
    assert slurm_cluster.wait_state(job, ["COMPLETED"], timeout=60) == "COMPLETED"
