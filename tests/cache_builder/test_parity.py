"""Cached frames equal qwen-vl-utils' ``fetch_video`` (decord backend) and ``fetch_image``, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from cache_builder.decode import DECODERS
from cache_builder.media import load_image, load_video
from cache_builder.spec import ImageSpec, VideoSpec

vp = pytest.importorskip("qwen_vl_utils.vision_process")
pytest.importorskip("decord")

PATCH = {"qwen2_5_vl": 14, "qwen3_vl": 16}
CLIP_NAMES = [
    "h264.mp4",
    "ntsc.mp4",
    "odd444.mp4",
    "vp9.webm",
    "mpeg4.avi",
    "four.mp4",
    "vfr.mkv",
    "moving.mp4",
    "rotated.mp4",
    "audio_first.mp4",
    "bframes.mp4",
    "gops.mp4",
    "hevc.mp4",
]
# Not hevc_open.mp4: decord's sparse reads of open-GOP HEVC return wrong frames (seeking to a CRA
# picture and decoding from there); a sequential decode, ffmpeg's and ours agree (test_decode.py).
#: (decoder, threads): every decoder, and libav's frame-threaded decoding with per-packet frame skipping
DECODER_RUNS = [(name, 0) for name in DECODERS] + [("libav", 2)]
SPECS = [
    {"fps": 2.0},
    {"num_frames": 4},
    {"fps": 4.0, "min_pixels": 3000, "max_pixels": 40000, "max_frames": 6},
    {"fps": 3.0, "video_start": 0.4, "video_end": 1.4},
]


@pytest.fixture(autouse=True)
def force_decord(monkeypatch):
    """qwen-vl-utils falls back to torchvision silently; pin decord and check it was used."""
    monkeypatch.setattr(vp, "FORCE_QWENVL_VIDEO_READER", "decord")
    vp.get_video_reader_backend.cache_clear()
    yield
    vp.get_video_reader_backend.cache_clear()


def reference(path, spec: VideoSpec):
    ele = {"video": str(path), **spec.to_qwen_ele()}
    (video, meta), sample_fps = vp.fetch_video(
        ele, image_patch_size=PATCH[spec.family], return_video_metadata=True, return_video_sample_fps=True
    )
    assert meta["video_backend"] == "decord"
    return video, meta, sample_fps


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("name", CLIP_NAMES)
def test_video_frames_identical(media_dir, family, name):
    for kw in SPECS:
        if name == "four.mp4" and "video_start" in kw:
            continue  # 0.4 s of a 4-frame clip holds too few frames for either implementation
        spec = VideoSpec(family=family, **kw)
        ref, meta, sample_fps = reference(media_dir / name, spec)
        for decoder, threads in DECODER_RUNS:
            frames, ours = load_video(media_dir / name, spec, decoder=decoder, threads=threads)
            assert ours["frames_indices"] == meta["frames_indices"], kw
            assert ours["total_num_frames"] == meta["total_num_frames"]
            assert ours["fps"] == meta["fps"]
            assert ours["sample_fps"] == sample_fps
            assert frames.dtype == np.uint8 and frames.shape == tuple(ref.shape), (decoder, kw)
            delta = np.abs(frames.astype(np.int16) - ref.numpy().astype(np.int16)).max()
            assert delta == 0, f"{name} {family} {kw} {decoder} x{threads}: max |Δ| = {delta}"


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("name", ["pic.png", "alpha.png"])
def test_image_identical(media_dir, family, name):
    spec = ImageSpec(family=family, min_pixels=5000, max_pixels=20000)
    ref = vp.fetch_image(
        {"image": str(media_dir / name), "min_pixels": spec.min_pixels, "max_pixels": spec.max_pixels},
        image_patch_size=PATCH[family],
    )
    frames, meta = load_image(media_dir / name, spec)
    assert frames.shape == (1, 3, ref.height, ref.width)
    assert (meta["resized_height"], meta["resized_width"]) == (ref.height, ref.width)
    assert np.array_equal(frames[0].transpose(1, 2, 0), np.asarray(ref))
