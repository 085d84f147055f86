"""The real single-node Slurm cluster (slurm/local/) runs what the launcher will submit through submitit:
a single job, a 4-task array, a 4-process job, and a checkpointable job that is requeued mid-run and
resumes from its checkpoint. No mocks: real sbatch, slurmctld, slurmd, slurmdbd and sacct."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import submitit
import yaml
from slurm_cluster import REPO, LocalSlurmCluster

pytestmark = pytest.mark.integration

# The job processes cannot import this test module (its folder is not on their sys.path): ship its
# functions and classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def submitit_parameters(profile: dict[str, Any]) -> dict[str, Any]:
    """Translate a slurm/profiles/*.yaml profile into submitit AutoExecutor parameters (what the
    launcher does), dropping unset (null) values."""
    params = {
        "slurm_partition": profile["partition"],
        "slurm_account": profile["account"],
        "slurm_qos": profile["qos"],
        "timeout_min": profile["time_min"],
        "mem_gb": profile["mem_gb"],
        "cpus_per_task": profile["cpus_per_task"],
        "slurm_gpus_per_task": profile["gpus_per_task"] or None,
        "nodes": profile["nodes"],
        "tasks_per_node": profile["tasks_per_node"],
        "slurm_signal_delay_s": profile["signal_delay_s"],
        "slurm_additional_parameters": profile["additional"] or None,
        "slurm_setup": profile["setup"] or None,
    }
    return {k: v for k, v in params.items() if v is not None}


def make_executor(folder: Path, **overrides: Any) -> submitit.AutoExecutor:
    """An executor on the local cluster configured from slurm/profiles/local.yaml."""
    profile = yaml.safe_load((REPO / "slurm" / "profiles" / "local.yaml").read_text())
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(**{**submitit_parameters(profile), **overrides})
    return executor


# ---- job functions (run inside Slurm jobs) ----


def add(a: int, b: int) -> int:
    return a + b


def square_when_all_started(x: int, folder: str, num_tasks: int) -> tuple[int, bool]:
    """Mark this task started and wait (up to 60 s) until all ``num_tasks`` have: True only if the
    array tasks really ran at the same time."""
    Path(folder, f"started-{x}").touch()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(list(Path(folder).glob("started-*"))) >= num_tasks:
            return x * x, True
        time.sleep(0.1)
    return x * x, False


def rank_and_world() -> tuple[int, int, int]:
    env = submitit.JobEnvironment()
    return env.global_rank, env.local_rank, env.num_tasks


class CountSteps(submitit.helpers.Checkpointable):
    """Counts to ``num_steps``, saving the count after every step, and on a (re)start continues from
    the saved count. Each start appends the step it began at to ``starts``. submitit's default
    ``checkpoint()`` resubmits the same call, which then resumes from the file."""

    def __call__(self, checkpoint: str, starts: str, num_steps: int, step_s: float) -> dict[str, Any]:
        path = Path(checkpoint)
        step = int(path.read_text()) if path.exists() else 0
        with open(starts, "a") as f:
            f.write(f"{step}\n")
        while step < num_steps:
            time.sleep(step_s)
            step += 1
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(str(step))
            os.replace(tmp, path)
        return {"steps": step, "starts": [int(s) for s in Path(starts).read_text().split()]}


# ---- tests ----


def test_single_job_returns_value(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    job = make_executor(tmp_path / "submitit").submit(add, 2, 3)
    assert slurm_cluster.wait_state(job.job_id, {"COMPLETED"}) == "COMPLETED"
    assert job.result() == 5


def test_array_of_four_runs_concurrently(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    executor = make_executor(tmp_path / "submitit", slurm_array_parallelism=4)
    jobs = executor.map_array(square_when_all_started, range(4), [str(marks)] * 4, [4] * 4)
    assert len({job.job_id.split("_")[0] for job in jobs}) == 1, "one array job"
    for job in jobs:
        assert slurm_cluster.wait_state(job.job_id, {"COMPLETED"}) == "COMPLETED"
    assert [job.result() for job in jobs] == [(0, True), (1, True), (4, True), (9, True)]


def test_four_process_job(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    """A TP2 x PP2-shaped job: 4 processes on the one node (8 declared CPUs on 2 real cores)."""
    job = make_executor(tmp_path / "submitit", tasks_per_node=4).submit(rank_and_world)
    assert slurm_cluster.wait_state(job.job_id, {"COMPLETED"}) == "COMPLETED"
    assert sorted(job.results()) == [(0, 0, 4), (1, 1, 4), (2, 2, 4), (3, 3, 4)]


def wait_for_step(checkpoint: Path, at_least: int, cluster: LocalSlurmCluster, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if checkpoint.exists() and int(checkpoint.read_text() or 0) >= at_least:
            return
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} never reached step {at_least}\n{cluster.report(job_id)}")


def submit_counter(tmp_path: Path, num_steps: int) -> tuple[submitit.Job, Path, Path]:
    checkpoint, starts = tmp_path / "step.txt", tmp_path / "starts.txt"
    job = make_executor(tmp_path / "submitit").submit(
        CountSteps(), str(checkpoint), str(starts), num_steps, 0.5
    )
    return job, checkpoint, starts


def check_resumed(cluster: LocalSlurmCluster, job: submitit.Job, num_steps: int) -> None:
    """The requeued job finished, started twice, the second time from a saved step, and its history
    shows the requeued run and the completed one."""
    assert cluster.wait_state(job.job_id, {"COMPLETED"}) == "COMPLETED"
    result = job.result()
    assert result["steps"] == num_steps
    first, second = result["starts"]
    assert first == 0
    assert 0 < second < num_steps, "resumed from its checkpoint, not from scratch"
    history = cluster.sacct_states(job.job_id, duplicates=True)
    assert history[0] == "REQUEUED" and history[-1] == "COMPLETED", history


def test_requeued_job_resumes_from_checkpoint(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    """An administrator's `scontrol requeue` (as a preemption does): the run is killed, the job goes
    back to the queue, and the new run continues from the checkpoint file."""
    num_steps = 40
    job, checkpoint, _ = submit_counter(tmp_path, num_steps)
    wait_for_step(checkpoint, 3, slurm_cluster, job.job_id)
    slurm_cluster.run("scontrol", "requeue", job.job_id)
    slurm_cluster.release(job.job_id)
    check_resumed(slurm_cluster, job, num_steps)


def test_preempted_checkpointable_requeues_itself(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    """submitit's own path: Slurm signals the job (SIGTERM then USR2, as on preemption or before the
    time limit); submitit calls checkpoint() and runs `scontrol requeue` from inside the job.

    That inner scontrol is itself killed by the requeue in a few percent of runs, leaving the job
    unrequeued: such a run is retried once, with a fresh job.
    """
    num_steps = 40
    for attempt in range(2):
        run_dir = tmp_path / f"attempt{attempt}"
        run_dir.mkdir()
        job, checkpoint, _ = submit_counter(run_dir, num_steps)
        wait_for_step(checkpoint, 3, slurm_cluster, job.job_id)
        job._interrupt()
        try:
            slurm_cluster.release(job.job_id)
        except AssertionError as exc:  # left the queue: the self-requeue did not happen
            if attempt == 1:
                raise
            print(f"self-requeue lost, retrying once: {exc}")
            continue
        check_resumed(slurm_cluster, job, num_steps)
        return
