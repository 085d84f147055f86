"""One job per run folder: a lock held for the job's life, naming its holder; gone when the holder dies."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vrl.launch.run_lock import LOCK_FILE, RunLocked, check_free, hold

HOLDER = """
import sys, time
from pathlib import Path
from vrl.launch.run_lock import hold
with hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_held_run_folder_is_refused_naming_the_holder(tmp_path, holder):
    refused = pytest.raises(RunLocked, match=rf"in use.*host {socket.gethostname()}.*pid {holder.pid}")
    with refused, hold(tmp_path, wait_s=0.3):
        pass
    with pytest.raises(RunLocked, match=rf"pid {holder.pid}"):
        check_free(tmp_path)


def test_the_lock_is_gone_when_its_holder_dies(tmp_path, holder):
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    check_free(tmp_path)
    with hold(tmp_path) as info:
        assert info["pid"] == os.getpid() and json.loads((tmp_path / LOCK_FILE).read_text()) == info
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: no holder named


def test_the_slurm_job_id_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    with hold(tmp_path) as info:
        assert info["slurm_job_id"] == "4242"


def test_a_second_hold_in_the_same_process_is_refused(tmp_path):
    with hold(tmp_path), pytest.raises(RunLocked), hold(Path(tmp_path), wait_s=0):
        pass
