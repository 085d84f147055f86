"""A 4-task Slurm-array build through the launcher gives the same entries as a single-process build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOOD, cache_config, write_records
from test_stage import entries

from cache_builder.build import build_local

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_four_task_slurm_array_equals_single_process(media_dir, tmp_path, request):
    cluster = request.getfixturevalue("slurm_cluster")  # tests/conftest.py: the real local Slurm cluster
    recs = write_records(tmp_path / "r.json", [*GOOD, "sub/same_as_h264.mp4"], ["pic.png"])
    single = tmp_path / "single"
    build_local(cache_config(input=recs, video_root=media_dir, out=single, fps=2))
    out = tmp_path / "slurm"
    cmd = [
        sys.executable, str(ROOT / "jobs" / "submit.py"), "stage=cache", "cluster=slurm", "profile=local",
        f"run_root={tmp_path / 'runs'}", f"input={recs}", f"video_root={media_dir}", f"out={out}",
        "fps=2", "num_shards=4", "progress=false", "wait=true",
    ]  # fmt: skip
    env = {**os.environ, "SLURM_CONF": cluster.slurm_conf, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert len(list((out / "shards").glob("*-of-00004.h5"))) == 4
    assert entries(out) == entries(single)
