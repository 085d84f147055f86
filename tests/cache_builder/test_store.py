"""Crash safety: kill -9 at any moment leaves nothing partial visible and no corrupt shard; rerun completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from conftest import GOOD, cache_config, write_records

from cache_builder import open_cache
from cache_builder.build import build_local
from cache_builder.store import read_catalog

ROOT = Path(__file__).resolve().parents[2]


def _entries(out: Path) -> dict[str, str]:
    """key → frames checksum, read from the shard files through the index."""
    index = json.loads((out / "index.json").read_text())
    result = {}
    for key, e in index["entries"].items():
        with h5py.File(out / e["shard"], "r") as f:
            result[key] = f["entries"][key].attrs["frames_sha256"]
    return result


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "cache_builder", "build", *args],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_for(predicate, proc: subprocess.Popen, limit_s: float = 120.0) -> bool:
    end = time.time() + limit_s
    while time.time() < end and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _assert_consistent(out: Path) -> None:
    """Whatever a kill left: every visible shard opens and lists complete entries; no index means no reader."""
    for shard in (out / "shards").glob("shard-*.h5"):
        catalog = read_catalog(shard)
        with h5py.File(shard, "r") as f:
            assert set(f["entries"]) == set(catalog["entries"])
    if (out / "index.json").exists():
        _entries(out)


def test_kill_9_then_rerun_gives_the_same_content(media_dir, tmp_path):
    videos = [*GOOD, "sub/same_as_h264.mp4"]
    recs = write_records(tmp_path / "r.json", videos, ["pic.png"])
    reference = tmp_path / "ref"
    build_local(cache_config(input=recs, video_root=media_dir, out=reference, fps=4, num_shards=3))
    out = tmp_path / "killed"
    args = [
        f"input={recs}",
        f"video_root={media_dir}",
        f"out={out}",
        "fps=4",
        "num_shards=3",
        "progress=false",
    ]
    moments = [
        lambda: any((out / "staging").rglob("*.h5")),  # while entries are being staged
        lambda: any((out / "shards").glob("*.h5")),  # after a shard was assembled
        lambda: any((out / "shards").glob(".*tmp*")),  # while a shard is being assembled (if caught)
    ]
    for moment in moments:
        proc = _start(args)
        _wait_for(moment, proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        _assert_consistent(out)
        if not (out / "index.json").exists():
            assert not open_cache(out).keys()
    proc = _start(args)
    assert proc.wait(timeout=300) == 0
    assert _entries(out) == _entries(reference)
    assert not list((out / "shards").glob(".*tmp*")) and not any((out / "staging").rglob("*.h5"))


@pytest.mark.parametrize("chunks", ["video", "frame"])
def test_frames_are_chunked_per_video_or_per_frame(media_dir, tmp_path, chunks):
    """FORMAT.md: one HDF5 chunk per entry by default (chunks=frame: one per frame), zstd by default;
    the reader returns the whole video either way."""
    out = tmp_path / "cache"
    records = write_records(tmp_path / "records.json", ["h264.mp4"], ["pic.png"])
    args = {"input": str(records), "video_root": str(media_dir), "out": str(out)}
    build_local(cache_config(**args, **({} if chunks == "video" else {"chunks": chunks})))
    index = json.loads((out / "index.json").read_text())
    assert len(index["entries"]) == 2
    reader = open_cache(out)
    for name in ("h264.mp4", "pic.png"):
        frames, _ = reader.get(str(media_dir / name))
        loc = reader.find(str(media_dir / name))
        with h5py.File(loc.shard, "r", locking=False) as f:  # the reader holds it open
            ds = f["entries"][loc.key]["frames"]
            want = frames.shape if chunks == "video" else (1, *frames.shape[1:])
            assert ds.chunks == want and ds.shape == frames.shape
            assert ds.dtype.name == "uint8" and "32015" in str(ds._filters)  # zstd (hdf5plugin filter id)


def test_a_shard_cleans_only_its_own_stale_temp_files(media_dir, tmp_path):
    """Array tasks share the shards folder: a task starting late must not delete the temp file another
    task is assembling right now (it did: a 4-task array failed with FileNotFoundError in CI)."""
    out = tmp_path / "cache"
    (out / "shards").mkdir(parents=True)
    mine = out / "shards" / ".shard-00000-of-00001.h5.tmp-999"
    other = out / "shards" / ".shard-00003-of-00004.h5.tmp-999"
    for p in (mine, other):
        p.write_bytes(b"partial")
    records = write_records(tmp_path / "records.json", ["h264.mp4"])
    build_local(cache_config(input=str(records), video_root=str(media_dir), out=str(out)))
    assert not mine.exists() and other.exists()
    assert len(open_cache(out).get(str(media_dir / "h264.mp4"))[0]) > 0
