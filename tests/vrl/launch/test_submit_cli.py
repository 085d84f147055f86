"""jobs/submit.py end to end on the local and debug executors, and its one-screen errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from vrl_fixtures import run_command

ROOT = Path(__file__).resolve().parents[3]


def submit(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_command(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *args], cwd=cwd, env=env, timeout=300
    )


def test_local_job_runs_and_saves_config(tmp_path):
    out = submit("stage=smoke", "steps=2", "step_seconds=0", "name=a", f"run_root={tmp_path}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "smoke" / "a"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["steps"] == 2 and saved["cluster"] == "local" and saved["name"] == "a"
    assert json.loads((run_dir / "smoke" / "task_0.json").read_text())["step"] == 2
    assert json.loads((run_dir / "smoke" / "summary.json").read_text()) == {"tasks": 1, "steps": 2}
    assert "submitted smoke: job" in out.stdout and "_log.err" in out.stdout


def test_rerun_same_name_resumes(tmp_path):
    args = ("stage=smoke", "step_seconds=0", "name=r", f"run_root={tmp_path}")
    assert submit(*args, "steps=2", cwd=tmp_path).returncode == 0
    out = submit(*args, "steps=4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    state = json.loads((tmp_path / "smoke" / "r" / "smoke" / "task_0.json").read_text())
    assert (state["step"], state["starts"], state["result"]["resumed_from"]) == (4, 2, 2)
    assert "'resumed_from': 2" in out.stderr


def test_two_tasks_get_a_torch_distributed_world(tmp_path):
    out = submit(
        "stage=smoke", "steps=1", "step_seconds=0", "tasks_per_node=2", f"run_root={tmp_path}", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "'world_size': 2" in out.stderr and "'rank_sum': 1" in out.stderr


def test_local_array_runs_every_task_then_finalize(tmp_path):
    out = submit(
        "stage=smoke",
        "num_tasks=3",
        "steps=1",
        "step_seconds=0",
        "name=arr",
        f"run_root={tmp_path}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    for task in range(3):
        assert (
            json.loads((tmp_path / "smoke" / "arr" / "smoke" / f"task_{task}.json").read_text())["step"] == 1
        )
    assert "submitted finalize" in out.stdout
    assert json.loads((tmp_path / "smoke" / "arr" / "smoke" / "summary.json").read_text())["tasks"] == 3


def test_a_failed_rank_cancels_the_others(tmp_path):
    # Rank 1 would wait in the all-reduce for rank 0 forever; the launcher must stop it.
    out = submit(
        "stage=smoke", "steps=1", "tasks_per_node=2", "fail_rank=0", f"run_root={tmp_path}", cwd=tmp_path
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "task 0 of job" in out.stderr and "cancelling its other tasks" in out.stderr
    assert "rank 0 failing before the all-reduce" in out.stderr


def test_failed_job_gives_nonzero_status(tmp_path):
    out = submit(
        "stage=smoke", "steps=3", "step_seconds=0", "fail_at_step=1", f"run_root={tmp_path}", cwd=tmp_path
    )
    assert out.returncode == 1
    assert "failing at step 1" in out.stderr and "FAILED" in out.stdout


def test_debug_executor_runs_in_process(tmp_path):
    out = submit(
        "stage=smoke", "steps=1", "step_seconds=0", "cluster=debug", f"run_root={tmp_path}", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "smoke: done" in out.stdout


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("stage=smoke", "stpes=3"), "Did you mean 'steps'"),
        (("stage=smoke", "steps=many"), "Invalid value for 'steps'"),
        (("stage=nope",), "Known stages:"),
        (
            ("stage=smoke", "cluster=slurm", "profile=nosuchprofile"),
            "Slurm profile 'nosuchprofile' not found",
        ),
        (("stage=smoke", "oops"), "Malformed override 'oops'"),
        (("stage=smoke", "cluster=moon"), "Valid choices: local, slurm, debug"),
    ],
)
def test_bad_input_is_one_screen_error(tmp_path, args, pattern):
    out = submit(*args, f"run_root={tmp_path}", cwd=tmp_path)
    assert out.returncode == 2
    assert pattern in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.splitlines()) < 25


def test_slurm_without_sbatch_suggests_local(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "p.yaml").write_text("partition: debug\n")
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "VRL_PROFILES_DIR": str(profiles),
        "HOME": str(tmp_path),
    }
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if not (Path(p) / "sbatch").exists())
    out = submit("stage=smoke", "cluster=slurm", "profile=p", f"run_root={tmp_path}", cwd=tmp_path, env=env)
    assert out.returncode == 2
    assert "cluster=local" in out.stderr and "Traceback" not in out.stderr


def test_print_config_prints_documented_yaml(tmp_path):
    out = submit("stage=smoke", "print_config=true", "steps=9", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["steps"] == 9
    assert "# Steps to count per task." in out.stdout
    assert not (tmp_path / "runs").exists()


def test_train_starts_from_its_default_preset(tmp_path):
    toy = yaml.safe_load(submit("stage=train", "print_config=true", cwd=tmp_path).stdout)
    plain = yaml.safe_load(submit("stage=train", "preset=none", "print_config=true", cwd=tmp_path).stdout)
    named = yaml.safe_load(
        submit("stage=train", "preset=easyvideor1", "print_config=true", cwd=tmp_path).stdout
    )
    assert toy["toy"]["families"] == ["color", "boolean"] and toy["warmup"]["sft_steps"] > 0
    assert plain == named and plain["warmup"]["sft_steps"] == 0 and plain["engine"]["lr"] == 1e-6
    warned = submit("stage=train", "model=/data/Qwen2.5-VL-7B", "print_config=true", cwd=tmp_path)
    assert "default preset 'toy'" in warned.stderr and "preset=easyvideor1" in warned.stderr
    bad = submit("stage=train", "preset=huge", cwd=tmp_path)
    assert bad.returncode == 2 and "Known presets: easyvideor1, toy" in bad.stderr
