"""Media sources and prompt building: cache and decode give identical prompts, a cache built with another
spec is refused naming the fields, missing media are counted skips, over-long prompts are skipped."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from cache_builder.build import build_local
from cache_builder.config import CacheConfig
from cache_builder.spec import SpecMismatchError
from vrl.data.config import DataConfig
from vrl.data.media import MediaSource, attach_root, specs_for
from vrl.data.processing import PromptBuilder
from vrl.models.loading import load_processor


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("media")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=96x64:r=8:d=2", "-pix_fmt", "yuv420p",
         str(root / "clip.mp4")],
        check=True,
    )  # fmt: skip
    return root


def records(root: Path) -> list[dict]:
    recs = [
        {"problem_id": "v", "problem": "What is shown?", "problem_type": "multiple choice",
         "options": ["A. bars", "B. a cat"], "solution": "<answer>A</answer>", "path": "clip.mp4", "data_type": "video"},
        {"problem_id": "gone", "problem": "What is shown?", "problem_type": "boolean",
         "solution": "<answer>yes</answer>", "path": "missing.mp4", "data_type": "video"},
    ]  # fmt: skip
    attach_root(recs, root)
    return recs


def build(root: Path, out: Path, cfg: DataConfig) -> None:
    video, _ = specs_for(cfg, "qwen2_5_vl")
    (out.parent / "in.json").write_text(json.dumps(records(root)[:1]))
    build_local(
        CacheConfig(
            input=str(out.parent / "in.json"), video_root=str(root), out=str(out), fps=video.fps,
            min_frames=video.min_frames, max_frames=video.max_frames, min_pixels=video.min_pixels,
            max_pixels=video.max_pixels, total_pixels=video.total_pixels, progress=False,
        )
    )  # fmt: skip


def builder(
    tiny_qwen25: Path, mode: str, cache: list[str], cfg: DataConfig, max_len: int = 4096
) -> PromptBuilder:
    video, image = specs_for(cfg, "qwen2_5_vl")
    return PromptBuilder(
        load_processor(tiny_qwen25), MediaSource(mode, cache, video, image), "think", max_len
    )


def test_cache_and_decode_give_identical_prompts(media_dir, tiny_qwen25, tmp_path):
    cfg = DataConfig()
    build(media_dir, tmp_path / "cache", cfg)
    rec = records(media_dir)[0]
    cached = builder(tiny_qwen25, "cache", [str(tmp_path / "cache")], cfg)
    decoded = builder(tiny_qwen25, "decode", [], cfg)
    a, b = cached.build(rec), decoded.build(rec)
    assert cached.media.counts["cache_hit"] == 1 and decoded.media.counts["decoded"] == 1
    assert torch.equal(a.input_ids, b.input_ids)
    for key in a.vision:
        assert torch.equal(a.vision[key], b.vision[key]), key
    assert a.text == b.text and "Options:\nA. bars\nB. a cat" in a.text and "<answer>" in a.text


def test_cache_built_with_another_budget_is_refused(media_dir, tiny_qwen25, tmp_path):
    build(media_dir, tmp_path / "cache", DataConfig())
    other = DataConfig()
    other.video.max_frames = 8
    other.video.max_pixels = 64 * 28 * 28
    with pytest.raises(SpecMismatchError, match="max_frames") as err:
        builder(tiny_qwen25, "cache", [str(tmp_path / "cache")], other).build(records(media_dir)[0])
    assert "max_pixels" in str(err.value)


def test_missing_media_is_a_counted_skip(media_dir, tiny_qwen25):
    b = builder(tiny_qwen25, "decode", [], DataConfig())
    assert b.build(records(media_dir)[1]) is None
    assert b.skipped["media_missing"] == 1


def test_cache_mode_without_entry_is_a_counted_skip_with_advice(media_dir, tiny_qwen25, tmp_path):
    build(media_dir, tmp_path / "cache", DataConfig())
    rec = dict(records(media_dir)[0], path="other.mp4")
    b = builder(tiny_qwen25, "cache", [str(tmp_path / "cache")], DataConfig())
    assert b.build(rec) is None and sum(b.skipped.values()) == 1


def test_too_long_prompts_are_skipped(media_dir, tiny_qwen25):
    b = builder(tiny_qwen25, "decode", [], DataConfig(), max_len=10)
    assert b.build(records(media_dir)[0]) is None
    assert b.skipped["prompt_too_long"] == 1
