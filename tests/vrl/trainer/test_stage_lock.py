"""The train stage holds its run folder for the job's life: a second job into a held folder stops at once,
before it loads a model or touches the folder's metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from vrl.config import parse
from vrl.launch.context import RunContext
from vrl.launch.run_lock import RunLocked
from vrl.trainer import stage
from vrl.trainer.config import Config

HOLDER = """
import sys, time
from pathlib import Path
from vrl.launch.run_lock import hold
with hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_job_stops_before_anything(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n')
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        cfg, _ = parse(Config, ["model=/nonexistent/model"])  # never reached: the lock comes first
        with pytest.raises(RunLocked, match=f"pid {proc.pid}"):
            stage.run(cfg, RunContext(tmp_path))
        assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 0}\n'
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
