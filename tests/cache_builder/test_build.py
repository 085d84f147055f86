"""Building: entries, dedupe by content, one entry per spec, resume, faults recorded and skipped."""

from __future__ import annotations

import json
import os

import pytest
from conftest import FAULTY, GOOD, cache_config, write_records

from cache_builder import open_cache
from cache_builder.build import build_local, plan_shards
from cache_builder.spec import VideoSpec


def _failures(out, kind="video"):
    records = map(json.loads, (out / "failures.jsonl").read_text().splitlines())
    return {r["path"]: r for r in records if r["kind"] == kind}


def test_build_and_read_back(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.json", [*GOOD, "sub/same_as_h264.mp4"], ["pic.png", "alpha.png"])
    out = tmp_path / "cache"
    summary = build_local(
        cache_config(input=recs, video_root=media_dir, out=out, fps=2, max_frames=8, num_shards=3)
    )
    assert summary["stored"] == len(GOOD) + 2  # the copy of h264.mp4 is the same content: stored once
    assert summary["skipped"] == 1 and summary["failed"] == 0
    reader = open_cache(out, expected_spec=VideoSpec(fps=2, max_frames=8), video_root=media_dir)
    a, meta_a = reader.get("h264.mp4")
    b, _ = reader.get({"path": "sub/same_as_h264.mp4", "data_type": "video"})
    assert a.dtype.name == "uint8" and a.ndim == 4 and a.shape[1] == 3
    assert (a == b).all()
    assert {"fps", "frames_indices", "total_num_frames", "sample_fps", "duration"} <= set(meta_a)
    img, meta = reader.get("pic.png")
    assert img.shape[0] == 1 and meta["width"] == 150
    index = json.loads((out / "index.json").read_text())
    assert len(index["entries"]) == len(GOOD) + 2
    assert index["sources"]["sub/same_as_h264.mp4"]["content"] == index["sources"]["h264.mp4"]["content"]


def test_two_specs_are_two_entries_and_resume_skips(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.jsonl", ["h264.mp4", "vp9.webm"], jsonl=True)
    out = tmp_path / "cache"
    first = build_local(cache_config(input=recs, video_root=media_dir, out=out, fps=4))
    again = build_local(cache_config(input=recs, video_root=media_dir, out=out, fps=4))
    assert (first["stored"], again["stored"], again["skipped"]) == (2, 0, 2)
    other = build_local(cache_config(input=recs, video_root=media_dir, out=out, num_frames=4))
    assert other["stored"] == 2
    index = json.loads((out / "index.json").read_text())
    assert (
        len(index["entries"]) == 4 and len([s for s in index["specs"].values() if s["kind"] == "video"]) == 2
    )
    two = open_cache(out, expected_spec=VideoSpec(num_frames=4), video_root=media_dir).get("h264.mp4")[0]
    fps = open_cache(out, expected_spec=VideoSpec(fps=4), video_root=media_dir).get("h264.mp4")[0]
    assert two.shape[0] == 4 and fps.shape[0] == 8
    with pytest.raises(ValueError, match="several specs"):
        open_cache(out, video_root=media_dir).get("h264.mp4")


def test_faulty_inputs_are_recorded_and_the_build_goes_on(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.json", ["h264.mp4", *FAULTY, "four.mp4"], ["notes.mp4"])
    out = tmp_path / "cache"
    summary = build_local(cache_config(input=recs, video_root=media_dir, out=out, num_shards=2))
    assert summary["stored"] == 2
    failures = _failures(out)
    for name, reason in FAULTY.items():
        assert failures[name]["reason"] == reason, (name, failures[name])
        assert failures[name]["message"]
    assert _failures(out, kind="image")["notes.mp4"]["reason"] == "not_image"
    reader = open_cache(out, video_root=media_dir)
    assert "h264.mp4" in reader and "thin.mp4" not in reader


def test_too_short_for_the_spec(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.json", ["four.mp4"])
    out = tmp_path / "cache"
    build_local(cache_config(input=recs, video_root=media_dir, out=out, num_frames=8))
    assert _failures(out)["four.mp4"]["reason"] == "too_short"


def test_plan_puts_identical_files_in_one_shard(media_dir, tmp_path):
    recs = write_records(tmp_path / "r.json", [*GOOD, "sub/same_as_h264.mp4"])
    tasks = plan_shards(cache_config(input=recs, video_root=media_dir, out=tmp_path / "c", num_shards=4))
    assert sorted(p for t in tasks for _, p in t["items"]) == sorted([*GOOD, "sub/same_as_h264.mp4"])
    together = [t["shard"] for t in tasks for _, p in t["items"] if p in ("h264.mp4", "sub/same_as_h264.mp4")]
    assert len(set(together)) == 1
    assert json.loads(json.dumps(tasks)) == tasks


def test_parallel_videos_give_the_same_cache(media_dir, tmp_path):
    """Several videos decoded at once (each with its own decoder process) store exactly what one at a
    time stores; copies of one file in flight together are decoded once."""
    from test_stage import entries

    names = [*GOOD, "sub/same_as_h264.mp4", *FAULTY]
    recs = write_records(tmp_path / "r.json", names, ["pic.png"])
    summaries = {}
    for parallel in (1, 4):
        out = tmp_path / f"p{parallel}"
        summaries[parallel] = build_local(
            cache_config(input=recs, video_root=media_dir, out=out, fps=2, parallel_videos=parallel)
        )
    assert entries(tmp_path / "p1") == entries(tmp_path / "p4")
    for field in ("stored", "skipped", "failed", "failures_by_reason"):
        assert summaries[1][field] == summaries[4][field], field
    assert summaries[4]["skipped"] == 1 and summaries[4]["failed"] == len(FAULTY)
    assert _failures(tmp_path / "p1").keys() == _failures(tmp_path / "p4").keys()


def test_parallel_videos_default_to_the_workers_share_of_cores_plus_one(tmp_path):
    from cache_builder.build import parallel_videos

    cores = len(os.sched_getaffinity(0))
    assert parallel_videos(cache_config(out=tmp_path)) == cores + 1
    assert parallel_videos(cache_config(out=tmp_path, num_workers=cores)) == 2
    assert parallel_videos(cache_config(out=tmp_path, parallel_videos=3)) == 3


def test_two_builds_of_one_cache_at_once_both_succeed(media_dir, tmp_path):
    """Two jobs that start together on a shared cache (two training runs of one suite) take turns per
    shard instead of cleaning and assembling each other's staging files; the second finds all stored."""
    from concurrent.futures import ThreadPoolExecutor

    recs = write_records(tmp_path / "r.json", GOOD, ["pic.png"])
    cfg = cache_config(input=recs, video_root=media_dir, out=tmp_path / "cache", fps=2)
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(build_local, [cfg, cfg])
    assert first["failed"] == second["failed"] == 0
    assert sorted([first["stored"], second["stored"]]) == [0, len(GOOD) + 1]
    reader = open_cache(tmp_path / "cache", expected_spec=VideoSpec(fps=2), video_root=media_dir)
    assert all(reader.get(name)[0].shape[0] > 0 for name in GOOD)
