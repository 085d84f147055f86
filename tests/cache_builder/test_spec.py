"""Specs: defaults resolved per family, canonical hashing, field-by-field differences."""

from __future__ import annotations

import pytest

from cache_builder.spec import ImageSpec, VideoSpec, diff, get_family, spec_from_dict, spec_hash


def test_family_presets():
    assert get_family("qwen2_5_vl").patch_size == 14 and get_family("qwen2_5_vl").factor == 28
    assert get_family("qwen3_vl").patch_size == 16 and get_family("qwen3_vl").factor == 32
    with pytest.raises(ValueError, match="Known families: qwen2_5_vl, qwen3_vl"):
        get_family("llava")


def test_defaults_follow_qwen_vl_utils():
    s = VideoSpec(family="qwen3_vl")
    assert (s.fps, s.min_frames, s.max_frames) == (2.0, 4, 768)
    assert s.min_pixels == 128 * 32 * 32 and s.max_pixels is None
    assert s.total_pixels == 128000 * 32 * 32 * 0.9
    i = ImageSpec(family="qwen2_5_vl")
    assert (i.min_pixels, i.max_pixels) == (4 * 28 * 28, 16384 * 28 * 28)


def test_equivalent_specs_hash_equal():
    assert VideoSpec(fps=2).hash() == VideoSpec(fps=2.0, min_frames=4).hash() == VideoSpec().hash()
    assert VideoSpec(fps=1).hash() != VideoSpec().hash()
    assert VideoSpec(family="qwen3_vl").hash() != VideoSpec().hash()
    assert VideoSpec(num_frames=8).hash() != VideoSpec().hash()
    assert ImageSpec().hash() != VideoSpec().hash()


def test_round_trip_through_stored_form():
    for s in (
        VideoSpec(num_frames=8, video_start=1.5),
        VideoSpec(family="qwen3_vl", max_pixels=150000),
        ImageSpec(),
    ):
        assert spec_from_dict(s.to_dict()) == s
        assert spec_hash(spec_from_dict(s.to_dict())) == s.hash()


def test_fps_and_num_frames_are_exclusive():
    with pytest.raises(ValueError, match="exclusive"):
        VideoSpec(fps=2, num_frames=8)
    with pytest.raises(ValueError, match="max_pixels"):
        VideoSpec(min_pixels=1000, max_pixels=10)
    with pytest.raises(ValueError, match="video_end"):
        VideoSpec(video_start=3, video_end=1)


def test_diff_names_each_differing_field():
    lines = diff(VideoSpec(fps=1, max_frames=16), VideoSpec(fps=2, max_frames=32))
    assert lines == ["fps: expected 1.0, stored 2.0", "max_frames: expected 16, stored 32"]
    assert diff(VideoSpec(), VideoSpec(fps=2.0)) == []
    assert any(line.startswith("family:") for line in diff(VideoSpec(family="qwen3_vl"), VideoSpec()))
