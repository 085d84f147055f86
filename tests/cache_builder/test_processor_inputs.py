"""Cached frames through the HF processor give exactly the on-the-fly qwen-vl-utils + processor inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cache_builder import processor_kwargs
from cache_builder.media import load_image, load_video
from cache_builder.spec import ImageSpec, VideoSpec

vp = pytest.importorskip("qwen_vl_utils.vision_process")
pytest.importorskip("decord")

PATCH = {"qwen2_5_vl": 14, "qwen3_vl": 16}
PROMPT = (
    "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>and "
    "<|vision_start|><|image_pad|><|vision_end|>What happens?<|im_end|>\n"
)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_processor_outputs_equal(media_dir, family, monkeypatch):
    from cb_tiny_processor import tiny_processor

    monkeypatch.setattr(vp, "FORCE_QWENVL_VIDEO_READER", "decord")
    vp.get_video_reader_backend.cache_clear()
    processor = tiny_processor(family)
    vspec = VideoSpec(family=family, fps=2.0, max_frames=6)
    ispec = ImageSpec(family=family, max_pixels=30000)
    video = media_dir / "ntsc.mp4"
    ref_video, ref_meta = vp.fetch_video(
        {"video": str(video), **vspec.to_qwen_ele()},
        image_patch_size=PATCH[family],
        return_video_metadata=True,
    )
    assert ref_meta["video_backend"] == "decord"
    ref_image = vp.fetch_image(
        {"image": str(media_dir / "pic.png"), "min_pixels": ispec.min_pixels, "max_pixels": ispec.max_pixels},
        image_patch_size=PATCH[family],
    )
    ref = processor(
        text=[PROMPT], images=[ref_image], videos=[ref_video], video_metadata=[ref_meta],
        do_resize=False, do_sample_frames=False, return_tensors="pt",
    )  # fmt: skip
    cached_video = load_video(video, vspec)
    cached_image = load_image(media_dir / "pic.png", ispec)
    ours = processor(
        text=[PROMPT], return_tensors="pt", **processor_kwargs(videos=[cached_video], images=[cached_image])
    )
    assert set(ours) == set(ref)
    assert torch.equal(ours["input_ids"], ref["input_ids"])
    assert torch.equal(ours["pixel_values_videos"], ref["pixel_values_videos"])
    assert torch.equal(ours["video_grid_thw"], ref["video_grid_thw"])
    assert torch.equal(ours["pixel_values"], ref["pixel_values"])
    if family == "qwen2_5_vl":
        assert np.allclose(ours["second_per_grid_ts"], ref["second_per_grid_ts"], rtol=0, atol=0)
    else:  # timestamps are text: make sure the prompt really carries them
        decoded = processor.tokenizer.decode(ours["input_ids"][0])
        assert "seconds>" in decoded


def test_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        processor_kwargs(
            videos=[
                (
                    np.zeros((2, 3, 4, 4), dtype=np.float32),
                    {"fps": 1, "frames_indices": [0, 1], "total_num_frames": 2},
                )
            ]
        )


def test_vllm_video_input_layout():
    from cache_builder.processor_inputs import vllm_video_input

    frames = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    meta = {
        "fps": 25.0,
        "frames_indices": [0, 10],
        "total_num_frames": 20,
        "sample_fps": 2.5,
        "duration": 0.8,
    }
    thwc, md = vllm_video_input(frames, meta)
    assert thwc.shape == (2, 4, 5, 3) and thwc.flags.c_contiguous
    assert (thwc[1, 2, 3] == frames[1, :, 2, 3]).all()
    assert md == {
        "fps": 25.0,
        "frames_indices": [0, 10],
        "total_num_frames": 20,
        "duration": 0.8,
        "do_sample_frames": False,
    }
