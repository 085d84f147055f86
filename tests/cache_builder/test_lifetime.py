"""``kill -9`` of a running build leaves no process behind: its worker processes (launcher=local,
num_workers>1) and their decoder children (libav servers, ffmpeg) end within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_records

ROOT = Path(__file__).resolve().parents[2]
#: how long the children of a killed build may take to end
GRACE_S = 5.0


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory) -> Path:
    """Six distinct 60 s clips (one encode, remuxed with different titles: different bytes, same frames)."""
    d = tmp_path_factory.mktemp("long")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=60", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "base.mp4")],
        check=True,
    )  # fmt: skip
    for i in range(6):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(d / "base.mp4"), "-c", "copy", "-metadata", f"title={'x' * i}",
             str(d / f"v{i}.mp4")],
            check=True,
        )  # fmt: skip
    return d


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid → (parent pid, state, command line) of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[1]), fields[0], cmdline)
    return out


def _descendants(pid: int) -> dict[int, str]:
    procs = _processes()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _, cmd) in procs.items():
            if ppid == parent and child not in found:
                found[child] = cmd
                todo.append(child)
    return found


def _alive(pids) -> dict[int, str]:
    procs = _processes()
    return {p: procs[p][2] for p in pids if p in procs and procs[p][1] != "Z"}  # zombies have ended


@pytest.mark.parametrize("decoder", ["libav", "ffmpeg"])
def test_killing_a_build_ends_its_workers_and_decoders(long_videos, tmp_path, decoder):
    if not sys.platform.startswith("linux"):
        pytest.skip("reads the process tree from /proc (Linux)")
    recs = write_records(tmp_path / "r.json", [f"v{i}.mp4" for i in range(6)])
    cmd = [sys.executable, "-m", "cache_builder", "build", f"input={recs}", f"video_root={long_videos}",
           f"out={tmp_path / 'cache'}", "num_workers=2", "num_shards=2", f"decoder={decoder}", "progress=false"]  # fmt: skip
    build = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    decoder_mark = "decode_worker.py" if decoder == "libav" else "ffmpeg"
    seen: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and build.poll() is None:
            seen = _descendants(build.pid)
            workers = [c for c in seen.values() if "spawn_main" in c]
            if len(workers) == 2 and any(decoder_mark in c for c in seen.values()):
                break
            time.sleep(0.05)
        assert build.poll() is None, "the build ended before its workers and decoders were seen"
        assert any(decoder_mark in c for c in seen.values()), f"no {decoder} decoder seen: {seen}"
        os.kill(build.pid, signal.SIGKILL)
        build.wait()
        deadline = time.monotonic() + GRACE_S
        while _alive(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = _alive(seen)
    finally:
        for pid in _alive(seen):  # never leave them running, whatever the outcome
            os.kill(pid, signal.SIGKILL)
        if build.poll() is None:
            build.kill()
    assert not survivors, f"still running {GRACE_S:.0f} s after the build was killed: {survivors}"
