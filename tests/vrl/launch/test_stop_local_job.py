"""Stopping ``jobs/submit.py`` stops the local job it started: Ctrl-C, SIGTERM, and SIGKILL (which no
handler sees: the job's tasks notice that the submitting process is gone)."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]


def _wait(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_stopping_submit_stops_the_local_job(sig, tmp_path):
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen(
            [
                sys.executable, str(ROOT / "jobs" / "submit.py"), "stage=smoke", "steps=10000",
                "step_seconds=0.2", "tasks_per_node=2", "name=s", f"run_root={tmp_path}",
            ],
            cwd=tmp_path, stdout=fo, stderr=fe, start_new_session=True,
        )  # fmt: skip
    procs: list[psutil.Process] = []
    try:
        _wait(lambda: re.search(r"submitted smoke: job (\d+)", out.read_text()), "submission line")
        assert "stops the job" in out.read_text()  # says how to stop it
        job_id = int(re.search(r"submitted smoke: job (\d+)", out.read_text()).group(1))
        state = tmp_path / "smoke" / "s" / "smoke" / "task_0.json"
        _wait(state.exists, "first step of the job")
        controller = psutil.Process(job_id)
        _wait(lambda: len(controller.children()) == 2, "two task processes")
        procs.extend([controller, *controller.children(recursive=True)])
        proc.send_signal(sig)
        assert proc.wait(timeout=60) != 0
        _gone, alive = psutil.wait_procs(procs, timeout=30)
        assert not alive, [p.pid for p in alive]
        if sig != signal.SIGKILL:
            assert "stopped local job" in err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in procs:  # what a failed stop left behind
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
