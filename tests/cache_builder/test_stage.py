"""The ``cache`` stage protocol (plan / run_task / finalize) and array-style builds equal one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
from conftest import GOOD, cache_config, write_records

from cache_builder import stage
from cache_builder.build import build_local
from vrl.launch.context import RunContext

ROOT = Path(__file__).resolve().parents[2]


def entries(out: Path) -> dict[str, str]:
    index = json.loads((out / "index.json").read_text())
    got = {}
    for key, e in index["entries"].items():
        with h5py.File(out / e["shard"], "r") as f:
            got[key] = f["entries"][key].attrs["frames_sha256"]
    return got


def test_stage_protocol_matches_single_process(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.json", [*GOOD, "sub/same_as_h264.mp4"], ["pic.png"])
    single = tmp_path / "single"
    build_local(cache_config(input=recs, video_root=media_dir, out=single, fps=2))
    cfg = cache_config(input=recs, video_root=media_dir, out=tmp_path / "staged", fps=2, num_shards=4)
    assert issubclass(stage.Config, object) and isinstance(cfg, stage.Config)
    tasks = stage.plan(cfg)
    assert len(tasks) == 4 and json.loads(json.dumps(tasks)) == tasks
    for i, task in enumerate(tasks):
        stage.run_task(cfg, task, RunContext(run_dir=tmp_path / "run", task_index=i, num_tasks=4))
    summary = stage.finalize(cfg, RunContext(run_dir=tmp_path / "run"))
    assert summary["entries"] == len(GOOD) + 1 and summary["shards"] == 4
    assert entries(tmp_path / "staged") == entries(single)
    assert len(list((tmp_path / "staged" / "shards").glob("*.h5"))) == 4


def test_array_tasks_by_hand_then_index(media_dir, tmp_path):
    """``launcher=array`` inside ``sbatch --array`` (simulated with SLURM_ARRAY_TASK_ID), then ``index``."""
    recs = write_records(tmp_path / "r.json", GOOD[:4])
    out = tmp_path / "arr"
    args = [f"input={recs}", f"video_root={media_dir}", f"out={out}", "num_shards=2", "progress=false"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cache_builder", "build", "launcher=array", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "SLURM_ARRAY_TASK_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    res = subprocess.run(
        [sys.executable, "-m", "cache_builder", "index", *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    single = tmp_path / "single"
    build_local(cache_config(input=recs, video_root=media_dir, out=single))
    assert entries(out) == entries(single)
