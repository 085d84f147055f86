"""A training run killed with SIGKILL and started again logs the same metrics as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SMALL = [
    "stage=train",
    "preset=none",
    "cluster=local",
    "toy.num_train=12",
    "toy.num_val=6",
    "toy.families=[color,boolean]",
    "data.video_source=decode",
    "rollout.n=2",
    "rollout.max_response_length=12",
    "trainer.rollout_batch_size=2",
    "trainer.total_steps=4",
    "trainer.save_every=2",
    "trainer.metrics=[jsonl]",
    "trainer.export_final=false",
]
#: wall-clock measurements differ between any two runs
VOLATILE = ("perf/", "time/")


def start(tmp_path: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *SMALL, f"run_root={tmp_path}", f"name={name}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


def test_killed_and_resumed_run_logs_the_same_metrics(tmp_path):
    ref = start(tmp_path, "uninterrupted")
    out, _ = ref.communicate(timeout=1200)
    assert ref.returncode == 0, out[-3000:]

    victim = start(tmp_path, "killed")
    run = tmp_path / "train" / "killed"
    deadline = time.time() + 1200
    while time.time() < deadline:  # kill -9 once step 3 is logged (the checkpoint of step 2 exists)
        if (run / "metrics.jsonl").exists() and any(r.get("step") == 3 for r in metrics(run)):
            break
        assert victim.poll() is None, victim.stdout.read()[-3000:]
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert (run / "checkpoints" / "step_000002" / "COMPLETE").exists()
    assert not (run / "summary.json").exists()

    again = start(tmp_path, "killed")
    out, _ = again.communicate(timeout=1200)
    assert again.returncode == 0, out[-3000:]
    assert "resumed from" in out
    assert metrics(run) == metrics(tmp_path / "train" / "uninterrupted")
