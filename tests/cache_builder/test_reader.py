"""Reading: spec checks, several caches in order (another lab's read-only cache), concurrent readers."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import shutil

import pytest
from conftest import cache_config, write_records

from cache_builder import CacheMiss, SpecMismatchError, VideoSpec, open_cache
from cache_builder.build import build_local


@pytest.fixture(scope="module")
def lab_a(media_dir, tmp_path_factory):
    """Another lab's cache: fps=4, built from its own paths."""
    d = tmp_path_factory.mktemp("labA")
    recs = write_records(d / "r.json", ["h264.mp4", "vp9.webm"])
    build_local(cache_config(input=recs, video_root=media_dir, out=d / "cache", fps=4))
    return d / "cache"


def _tree(folder):
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_mismatched_spec_names_each_field(lab_a):
    with pytest.raises(SpecMismatchError) as err:
        open_cache(lab_a, expected_spec=VideoSpec(fps=1, max_frames=16, family="qwen3_vl"))
    text = str(err.value)
    for field in (
        "fps: expected 1.0, stored 4.0",
        "max_frames: expected 16, stored 768",
        "family:",
        "min_pixels:",
    ):
        assert field in text


def test_reuse_another_labs_cache_without_writing_to_it(media_dir, lab_a, tmp_path):
    root = tmp_path / "myvideos"
    (root / "x").mkdir(parents=True)
    shutil.copy(media_dir / "h264.mp4", root / "x" / "renamed.mp4")
    shutil.copy(media_dir / "ntsc.mp4", root / "ntsc.mp4")
    recs = write_records(tmp_path / "r.json", ["x/renamed.mp4", "ntsc.mp4"])
    mine = tmp_path / "mine"
    before = _tree(lab_a)
    summary = build_local(cache_config(input=recs, video_root=root, cache_dir=f"[{lab_a},{mine}]", fps=4))
    assert (summary["stored"], summary["skipped"]) == (1, 1)
    assert _tree(lab_a) == before  # read-only: nothing written there
    reader = open_cache([lab_a, mine], expected_spec=VideoSpec(fps=4), video_root=root)
    assert reader.find("x/renamed.mp4").cache_dir == lab_a
    assert reader.find("ntsc.mp4").cache_dir == mine
    assert (
        reader.get("x/renamed.mp4")[0].shape
        == open_cache(lab_a, video_root=media_dir).get("h264.mp4")[0].shape
    )
    # a cache holding another spec is never used for this spec's lookups
    lab_b = tmp_path / "labB"
    build_local(
        cache_config(
            input=write_records(tmp_path / "b.json", ["h264.mp4"]), video_root=media_dir, out=lab_b, fps=2
        )
    )
    only_b = open_cache([lab_b, mine], expected_spec=VideoSpec(fps=4), video_root=root)
    with pytest.raises(CacheMiss):
        only_b.get("x/renamed.mp4")


def test_lookup_without_the_video_file_and_for_unknown_paths(media_dir, lab_a, tmp_path):
    reader = open_cache(lab_a, video_root=tmp_path)  # videos not reachable: the recorded path decides
    assert reader.get("h264.mp4")[0].ndim == 4
    copy = tmp_path / "elsewhere.mp4"
    shutil.copy(media_dir / "vp9.webm", copy)
    assert open_cache(lab_a).get(str(copy))[0].ndim == 4  # unknown path: found by hashing its content
    with pytest.raises(CacheMiss):
        open_cache(lab_a).get(str(media_dir / "ntsc.mp4"))


def _digest_all(args):
    reader, paths = args
    return [hashlib.sha256(reader.get(p)[0].tobytes()).hexdigest() for p in paths for _ in range(3)]


def test_many_concurrent_readers(lab_a):
    reader = open_cache(lab_a)
    paths = ["h264.mp4", "vp9.webm"]
    expected = _digest_all((reader, paths))  # the parent opens shard handles before forking
    with mp.get_context("fork").Pool(4) as pool:
        results = pool.map(_digest_all, [(reader, paths)] * 8)
    assert all(r == expected for r in results)
    ctx = mp.get_context("fork")  # children inheriting the parent's open handles must reopen them
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(reader, paths, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(r == expected for r in got)
    assert os.getpid() == reader._pid


def _child(reader, paths, queue):
    queue.put(_digest_all((reader, paths)))


def test_specs_with_only_failures_do_not_make_lookups_ambiguous(media_dir, tmp_path):
    out = tmp_path / "cache"
    build_local(
        cache_config(input=write_records(tmp_path / "a.json", ["h264.mp4"]), video_root=media_dir, out=out)
    )
    failing = write_records(tmp_path / "b.json", ["empty.mp4"])
    build_local(cache_config(input=failing, video_root=media_dir, out=out, fps=1))
    assert open_cache(out, video_root=media_dir).get("h264.mp4")[0].ndim == 4


def test_no_index_no_entries(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CacheMiss):
        open_cache(tmp_path / "empty").get("a.mp4")
    with pytest.raises(FileNotFoundError):
        open_cache(tmp_path / "nope")
