"""``launcher=mpi``: a 2-rank mpirun build gives the same entries as a single-process build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOOD, cache_config, write_records
from test_stage import entries

from cache_builder.build import build_local

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_two_rank_mpi_build_equals_single_process(media_dir, tmp_path):
    if shutil.which("mpirun") is None:
        pytest.fail("mpirun is required for this integration test (apt-get install -y openmpi-bin)")
    recs = write_records(tmp_path / "r.json", [*GOOD, "sub/same_as_h264.mp4"], ["pic.png"])
    single = tmp_path / "single"
    build_local(cache_config(input=recs, video_root=media_dir, out=single, fps=2))
    out = tmp_path / "mpi"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    cmd = [
        "mpirun", "-n", "2", "--oversubscribe", sys.executable, "-m", "cache_builder", "build", "launcher=mpi",
        f"input={recs}", f"video_root={media_dir}", f"out={out}", "fps=2", "progress=false",
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(list((out / "shards").glob("*-of-00002.h5"))) == 2
    assert entries(out) == entries(single)
