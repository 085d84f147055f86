"""``python -m cache_builder build|verify|stats|index``: key=value configuration, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
from conftest import write_records

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cache_builder", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_build_verify_stats(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.json", ["h264.mp4", "vp9.webm", "empty.mp4"], ["pic.png"])
    out = tmp_path / "cache"
    common = [f"input={recs}", f"video_root={media_dir}", f"out={out}"]
    spec = [
        "family=qwen2_5_vl",
        "fps=2",
        "max_frames=32",
        "min_pixels=3136",
        "max_pixels=100352",
        "total_pixels=4000000",
    ]
    res = run("build", *common, *spec, "num_shards=2", "progress=false")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (summary["stored"], summary["failed"], summary["entries"]) == (3, 1, 3)
    assert "videos/s" in res.stdout and "MB written" in res.stdout

    ok = run("verify", *common, *spec)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 3 entries checked" in ok.stdout
    wrong = run("verify", f"out={out}", "fps=1")
    assert wrong.returncode == 1 and "fps: expected 1.0, stored 2.0" in wrong.stdout

    stats = run("stats", f"out={out}", "json=true")
    s = json.loads(stats.stdout)
    assert (
        s["entries"] == 3
        and s["by_kind"] == {"image": 1, "video": 2}
        and s["failures_by_reason"] == {"empty_file": 1}
    )
    assert s["compression_ratio"] > 1
    assert "compression" in run("stats", f"out={out}").stdout


def test_verify_detects_damage_and_incompleteness(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.json", ["h264.mp4"])
    out = tmp_path / "cache"
    assert (
        run("build", f"input={recs}", f"video_root={media_dir}", f"out={out}", "progress=false").returncode
        == 0
    )
    more = write_records(tmp_path / "more.json", ["h264.mp4", "vp9.webm"])
    res = run("verify", f"out={out}", f"input={more}", f"video_root={media_dir}")
    assert res.returncode == 1 and "vp9.webm: neither cached nor recorded" in res.stdout
    shard = next((out / "shards").glob("*.h5"))
    with h5py.File(shard, "r+") as f:
        key = next(iter(f["entries"]))
        ds = f["entries"][key]["frames"]
        ds[0, 0, 0, 0] = ds[0, 0, 0, 0] ^ 0xFF
    res = run("verify", f"out={out}")
    assert res.returncode == 1 and "checksum mismatch" in res.stdout


def test_config_errors_exit_2(tmp_path):
    res = run("build", "input=x.json", f"out={tmp_path}", "fsp=2")
    assert res.returncode == 2 and "Did you mean 'fps'" in res.stderr
    res = run("build", "input=x.json", f"out={tmp_path}", "fps=2", "num_frames=8")
    assert res.returncode == 2 and "exclusive" in res.stderr
    res = run("build", f"input={tmp_path / 'missing.json'}", f"out={tmp_path}")
    assert res.returncode == 2 and "input file not found" in res.stderr
    assert run("frobnicate").returncode == 2
