"""Video-MMMU's question image reaches the model: a record with ``image_path`` gets its video, then its image,
in the chat prompt, the processor's tensors and the raw media handed to vLLM; a missing image is a sample
error (counted, the run goes on). The tiny model's own processor, a generated clip and image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval_harness.benchmarks import get_benchmark
from eval_harness.benchmarks.stem import IMAGE_HINT
from eval_harness.inference import PromptMaker, SampleError
from eval_harness.records import KEY
from vrl.data.config import DataConfig
from vrl.data.media import ROOT_KEY, specs_for
from vrl.models.loading import load_processor


@pytest.fixture(scope="module")
def media_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videommmu")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=96x64:r=8:d=2", "-pix_fmt", "yuv420p",
         str(root / "dev_Biology_3.mp4")],
        check=True,
    )  # fmt: skip
    (root / "images").mkdir()
    pixels = np.random.RandomState(0).randint(0, 255, (56, 84, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "images" / "dev_Biology_3.png")
    return root


def _record(root: Path, **extra) -> dict:
    return {
        KEY: "1", "problem_id": 1, "problem": "<image 1> What kind of sugar is this, aldose or ketose?",
        "problem_type": "multiple choice", "options": ["A. aldose", "B. ketose"], "solution": "<answer>A</answer>",
        "path": "./dev_Biology_3.mp4", "data_type": "video", "image_path": "./images/dev_Biology_3.png",
        ROOT_KEY: str(root), **extra,
    }  # fmt: skip


def _maker(tiny_qwen25: Path) -> PromptMaker:
    video, image = specs_for(DataConfig(), "qwen2_5_vl")
    bench = get_benchmark("videommmu")
    return PromptMaker(
        load_processor(tiny_qwen25), ("decode", [], video, image), "direct", 8192, bench.render
    )


def test_the_image_follows_the_video_in_the_prompt(media_root, tiny_qwen25):
    prompt = _maker(tiny_qwen25).prepare(_record(media_root))
    video_at, image_at = prompt.text.index("<|video_pad|>"), prompt.text.index("<|image_pad|>")
    assert video_at < image_at < prompt.text.index(IMAGE_HINT) < prompt.text.index("aldose or ketose")
    assert {"pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"} <= set(prompt.vision)
    assert set(prompt.media) == {"video", "image"} and len(prompt.media["image"]) == 1
    assert prompt.media["image"][0].size == (84, 56)


def test_without_image_path_only_the_video_is_given(media_root, tiny_qwen25):
    record = _record(media_root)
    del record["image_path"]
    prompt = _maker(tiny_qwen25).prepare(record)
    assert "<|image_pad|>" not in prompt.text and IMAGE_HINT not in prompt.text
    assert set(prompt.media) == {"video"} and "pixel_values" not in prompt.vision


def test_a_missing_image_is_a_sample_error(media_root, tiny_qwen25):
    with pytest.raises(SampleError, match="media file not found") as err:
        _maker(tiny_qwen25).prepare(_record(media_root, image_path="./images/gone.png"))
    assert err.value.reason == "media_missing"
