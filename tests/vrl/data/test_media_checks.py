"""What training and evaluation do with a damaged cache entry (a failed sample, or decoded again with
prefer_cache) and with a record path that leaves the media root (refused unless allow_outside_root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from cache_builder.build import build_local
from cache_builder.config import CacheConfig
from cache_builder.errors import MediaError
from cache_builder.reader import open_cache
from vrl.data.config import DataConfig
from vrl.data.media import MediaSource, attach_root, specs_for
from vrl.data.processing import PromptBuilder
from vrl.models.loading import load_processor


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    """``root/clip.mp4``, ``outside/secret.mp4`` and ``root/link.mp4`` → ``outside/secret.mp4``."""
    base = tmp_path_factory.mktemp("paths")
    (base / "root").mkdir()
    (base / "outside").mkdir()
    for name, src in (
        ("root/clip.mp4", "testsrc2=s=96x64:r=8:d=2"),
        ("outside/secret.mp4", "smptebars=s=96x64:r=8:d=2"),
    ):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", src, "-pix_fmt", "yuv420p", str(base / name)],
            check=True,
        )  # fmt: skip
    os.symlink(base / "outside" / "secret.mp4", base / "root" / "link.mp4")
    return base


def record(root: Path, path: str) -> dict:
    rec = {"problem_id": path, "problem": "What is shown?", "problem_type": "boolean",
           "solution": "<answer>yes</answer>", "path": path, "data_type": "video"}  # fmt: skip
    attach_root([rec], root)
    return rec


def source(mode: str = "decode", cache: list[str] = (), allow_outside_root: bool = False) -> MediaSource:
    video, image = specs_for(DataConfig(), "qwen2_5_vl")
    return MediaSource(mode, list(cache), video, image, allow_outside_root=allow_outside_root)


def build_cache(root: Path, out: Path, paths: list[str], allow_outside_root: bool = False) -> None:
    video, _ = specs_for(DataConfig(), "qwen2_5_vl")
    recs = out.parent / f"{out.name}.json"
    recs.write_text(json.dumps([{"path": p, "data_type": "video"} for p in paths]))
    build_local(
        CacheConfig(
            input=str(recs), video_root=str(root), out=str(out), fps=video.fps, min_frames=video.min_frames,
            max_frames=video.max_frames, min_pixels=video.min_pixels, max_pixels=video.max_pixels,
            total_pixels=video.total_pixels, compression="none", allow_outside_root=allow_outside_root,
            progress=False,
        )
    )  # fmt: skip


def escapes(layout: Path) -> list[str]:
    return ["../outside/secret.mp4", str(layout / "outside" / "secret.mp4"), "link.mp4"]


def test_paths_outside_the_media_root_are_refused(layout):
    root = layout / "root"
    media = source()
    for path in escapes(layout):
        with pytest.raises(MediaError) as err:
            media.load(record(root, path))
        assert err.value.reason == "outside_root", path
        assert "allow_outside_root=true" in str(err.value) and str(root) in str(err.value)
    for path in ("clip.mp4", "sub/../clip.mp4", str(root / "clip.mp4")):
        assert media.load(record(root, path)).frames.ndim == 4
    allowed = source(allow_outside_root=True)
    for path in escapes(layout):
        assert allowed.load(record(root, path)).frames.ndim == 4
    assert DataConfig().allow_outside_root is False


def test_a_cached_entry_does_not_open_a_path_outside_the_root(layout, tmp_path):
    root = layout / "root"
    build_cache(root, tmp_path / "cache", ["link.mp4"], allow_outside_root=True)
    with pytest.raises(MediaError, match="outside the media root"):
        source("cache", [str(tmp_path / "cache")]).load(record(root, "link.mp4"))


def test_outside_root_is_a_counted_failed_sample(layout, tiny_qwen25):
    root = layout / "root"
    builder = PromptBuilder(load_processor(tiny_qwen25), source(), "think", 4096)
    assert [builder.build(record(root, p)) for p in escapes(layout)] == [None, None, None]
    assert builder.skipped == {"media_outside_root": 3}
    assert builder.build(record(root, "clip.mp4")) is not None


def _flip_frame_byte(cache: Path) -> None:
    shard = next((cache / "shards").glob("*.h5"))
    with h5py.File(shard, "r") as f:
        key = next(iter(f["entries"]))
        info = f["entries"][key]["frames"].id.get_chunk_info(0)
    with open(shard, "r+b") as fh:
        fh.seek(info.byte_offset + 100)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x01]))


def test_a_corrupt_cache_entry_is_a_failed_sample_or_decoded_again(layout, tmp_path):
    root = layout / "root"
    cache = tmp_path / "cache"
    build_cache(root, cache, ["clip.mp4"])
    rec = record(root, "clip.mp4")
    good = source("cache", [str(cache)]).load(rec).frames
    _flip_frame_byte(cache)
    strict = source("cache", [str(cache)])
    with pytest.raises(MediaError) as err:
        strict.load(rec)
    assert err.value.reason == "corrupt_entry" and "shards/" in str(err.value)
    assert strict.counts["cache_corrupt"] == 1 and strict.counts["cache_hit"] == 0
    fallback = source("prefer_cache", [str(cache)])
    again = fallback.load(rec).frames
    assert np.array_equal(again, good)  # decoded afresh: the frames the entry held before the damage
    assert fallback.counts["cache_corrupt"] == 1 and fallback.counts["decoded"] == 1


def test_a_damaged_cache_never_reaches_the_prompt(layout, tmp_path, tiny_qwen25):
    root = layout / "root"
    cache = tmp_path / "cache"
    build_cache(root, cache, ["clip.mp4"])
    _flip_frame_byte(cache)
    video, image = specs_for(DataConfig(), "qwen2_5_vl")
    builder = PromptBuilder(load_processor(tiny_qwen25), source("cache", [str(cache)]), "think", 4096)
    assert builder.build(record(root, "clip.mp4")) is None
    assert builder.skipped == {"media_corrupt_entry": 1}
    reader = open_cache(cache, [video, image], video_root=root)
    assert "clip.mp4" in reader  # the entry is still indexed: only its read is refused
    shutil.rmtree(cache)
