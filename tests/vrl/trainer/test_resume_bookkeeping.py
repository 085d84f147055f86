"""Resume bookkeeping through jobs/submit.py: a dead attempt leaves no rows, a finished run is not trained
again, changed settings are refused unless named in resume.allow_changes (then applied and recorded), and
a second job cannot train into a run folder that a running job holds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from vrl_fixtures import run_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "stage=train",
    "preset=none",
    "cluster=local",
    "toy.num_train=8",
    "toy.num_val=4",
    "toy.families=[color,boolean]",
    "data.video_source=decode",
    "rollout.n=2",
    "rollout.max_response_length=8",
    "trainer.rollout_batch_size=2",
    "trainer.metrics=[jsonl,tensorboard]",
    "trainer.export_final=false",
]
FINISHED = ["trainer.total_steps=2", "trainer.save_every=1"]


def submit(root: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "jobs" / "submit.py"), *TINY, f"run_root={root}", f"name={name}", *args]
    return run_command(cmd, timeout=600, cwd=root)


def start(root: Path, name: str, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "jobs" / "submit.py"), *TINY, f"run_root={root}", f"name={name}", *args]
    return subprocess.Popen(
        cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def tb_steps(run: Path) -> dict[str, list[int]]:
    """Per scalar tag, the steps TensorBoard holds (all event files of the run, as TensorBoard reads them)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, f"ended before {what}:\n{proc.stdout.read()[-3000:]}"
        assert time.time() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A run whose first attempt was killed (SIGKILL) after logging a step and before any checkpoint, then
    resubmitted (with other settings: nothing was saved yet, so the run starts over) and finished."""
    root = tmp_path_factory.mktemp("runs")
    run = root / "train" / "r"
    victim = start(root, "r", "trainer.total_steps=50", "trainer.save_every=0")
    wait_for(lambda: (run / "metrics.jsonl").exists() and len(rows(run)) >= 2, victim, "a logged step")
    os.killpg(victim.pid, signal.SIGKILL)  # submit.py and the job it started
    victim.wait()
    assert not list((run / "checkpoints").glob("step_*/COMPLETE"))
    out = submit(root, "r", *FINISHED)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return run


def test_a_dead_attempt_before_the_first_checkpoint_leaves_no_rows(finished):
    assert [r["step"] for r in rows(finished)] == [0, 1, 2, 2]  # val before, two steps, val after
    for tag, steps in tb_steps(finished).items():
        assert max(Counter(steps).values()) == 1, (tag, steps)
    assert tb_steps(finished)["reward/overall"] == [1, 2]


def test_a_finished_run_resubmitted_adds_nothing(finished):
    before = (finished / "metrics.jsonl").read_bytes()
    jobs = sorted(p.name for p in (finished / "submitit").iterdir())
    out = submit(finished.parent.parent, "r", *FINISHED)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "is complete" in out.stderr
    assert (finished / "metrics.jsonl").read_bytes() == before
    assert sorted(p.name for p in (finished / "submitit").iterdir()) == jobs  # no job was submitted


def test_changed_settings_are_refused_with_the_keys(finished):
    saved = (finished / "config.yaml").read_text()
    out = submit(finished.parent.parent, "r", *FINISHED, "engine.lr=0.0001", "trainer.seed=7")
    assert out.returncode == 2, out.stdout[-3000:] + out.stderr[-3000:]
    assert "engine.lr" in out.stderr and "trainer.seed" in out.stderr and "resume.allow_changes" in out.stderr
    assert "Traceback" not in out.stderr
    assert (finished / "config.yaml").read_text() == saved


def test_allowed_changes_are_applied_and_recorded(finished, tmp_path):
    root = tmp_path
    shutil.copytree(finished, root / "train" / "more")
    run = root / "train" / "more"
    out = submit(
        root, "more", "trainer.total_steps=3", "trainer.save_every=1", "engine.lr=0.0001",
        "resume.allow_changes=[trainer.total_steps,engine.lr]",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    got = rows(run)
    assert [r["step"] for r in got] == [0, 1, 2, 2, 3, 3]
    assert got[1]["actor/lr"] == pytest.approx(1e-6) and got[4]["actor/lr"] == pytest.approx(1e-4)
    (change,) = [json.loads(line) for line in (run / "resume_changes.jsonl").read_text().splitlines()]
    assert change["step"] == 2
    assert change["changes"] == {"engine.lr": [1e-6, 1e-4], "trainer.total_steps": [2, 3]}
    saved = yaml.safe_load((run / "checkpoints" / "step_000003" / "config.yaml").read_text())
    assert saved["engine"]["lr"] == 1e-4


def test_a_second_job_cannot_train_into_a_held_run_folder(tmp_path):
    run = tmp_path / "train" / "busy"
    first = start(tmp_path, "busy", "trainer.total_steps=200", "trainer.save_every=0")
    try:
        wait_for(lambda: (run / "metrics.jsonl").exists(), first, "the first job's metrics")
        holder = json.loads((run / "run.lock").read_text())
        out = submit(tmp_path, "busy", "trainer.total_steps=200", "trainer.save_every=0")
        assert out.returncode == 2, out.stdout[-3000:] + out.stderr[-3000:]
        assert "in use" in out.stderr and f"pid {holder['pid']}" in out.stderr
        assert first.poll() is None  # the first job trains on
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
