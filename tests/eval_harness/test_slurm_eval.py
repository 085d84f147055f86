"""The issue's proof on the real local Slurm cluster: a 3-task eval array on the toy suite with the tiny
model, one task killed with scancel mid-run, resumed (with another num_shards), aggregated; predictions and
results equal a single-process run's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from vrl.models.tiny import resolve_model
from vrl.toy import ToyConfig, ensure_toy_suite

pytestmark = pytest.mark.integration

NUM = 36


def _submit(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "submit.py"), "stage=eval", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # the line the killed task was writing
    return out


def _answers(run_dir: Path) -> dict[str, str]:
    return {x["key"]: x["response"] for x in _lines(run_dir / "predictions" / "toy.jsonl") if not x["error"]}


def _results(run_dir: Path) -> dict:
    entry = json.loads((run_dir / "results.json").read_text())["toy"]
    return {k: entry[k] for k in ("overall", "subsets", "counts", "num_scored", "num_missing", "num_errors")}


def test_killed_array_task_resumes_and_equals_single_process(tmp_path, request):
    cluster = request.getfixturevalue("slurm_cluster")
    resolve_model("tiny-qwen2.5-vl")  # built once here, not by three tasks at once
    suite = ensure_toy_suite(
        ToyConfig(num_train=0, num_val=NUM, seed=11, coverage_every=0, out=str(tmp_path / "suite"))
    )
    env = {**os.environ, "SLURM_CONF": cluster.slurm_conf, "PYTHONPATH": str(REPO)}
    common = [
        f"run_root={tmp_path / 'runs'}", f"toy.out={suite}", "toy.num_train=0", f"toy.num_val={NUM}",
        "toy.seed=11", "toy.coverage_every=0", "max_new_tokens=48", "batch_size=1", "progress=false",
    ]  # fmt: skip
    slurm = ["cluster=slurm", "profile=local", "name=arr"]
    out = _submit(env, tmp_path, *slurm, "num_shards=3", "wait=false", *common)
    assert out.returncode == 0, out.stdout + out.stderr
    ids = re.findall(r"submitted eval: job (\S+)", out.stdout)
    tasks, final = [j for j in ids if "_" in j], [j for j in ids if "_" not in j]
    assert len(tasks) == 3 and len({t.split("_")[0] for t in tasks}) == 1 and len(final) == 1, ids
    run_dir = tmp_path / "runs" / "eval" / "arr"
    preds = run_dir / "predictions" / "toy.jsonl"

    victim = tasks[0]  # array task 0 runs shard 0
    deadline = time.monotonic() + 600
    while not any(x.get("shard") == 0 for x in _lines(preds)):
        assert time.monotonic() < deadline, "shard 0 never wrote a prediction\n" + cluster.report(victim)
        time.sleep(0.2)
    cluster.run("scancel", victim)
    assert cluster.wait_state(victim, ["CANCELLED"], timeout=120) == "CANCELLED"
    for task in tasks[1:]:
        cluster.wait_state(task, ["COMPLETED"], timeout=900)
    # the aggregation job (afterany) refuses: samples of the killed shard are missing
    cluster.wait_state(final[0], ["FAILED"], timeout=300)
    done_before = _answers(run_dir)
    assert NUM // 3 <= len(done_before) < NUM, len(done_before)  # killed mid-run: some of its samples done
    assert json.loads((run_dir / "missing.json").read_text())["toy"]

    out = _submit(env, tmp_path, *slurm, "num_shards=2", "wait=true", *common)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"eval plan: {NUM - len(done_before)} of {NUM} samples to run" in out.stderr
    assert sum(1 for x in _lines(preds) if not x["error"]) == NUM  # nothing was run twice

    single = _submit(env, tmp_path, "cluster=local", "name=single", "num_shards=1", "wait=true", *common)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    single_dir = tmp_path / "runs" / "eval" / "single"
    assert _answers(run_dir) == _answers(single_dir)
    assert _results(run_dir) == _results(single_dir)
