"""Evaluation refuses a record whose media path leaves its media folder (a failed sample with error
``media_outside_root``) unless ``allow_outside_root=true``."""

from __future__ import annotations

import subprocess

import pytest

from eval_harness.config import Config
from eval_harness.inference import PromptMaker, SampleError
from vrl.data.media import ROOT_KEY
from vrl.models.loading import load_processor


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval_paths")
    (base / "bench").mkdir()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=96x64:r=8:d=2", "-pix_fmt", "yuv420p",
         str(base / "elsewhere.mp4")],
        check=True,
    )  # fmt: skip
    return base


def _maker(tiny_qwen25, allow: bool) -> PromptMaker:
    cfg = Config(allow_outside_root=allow)
    video, image = cfg.specs("qwen2_5_vl")
    media = ("decode", [], video, image, cfg.allow_outside_root)
    return PromptMaker(load_processor(tiny_qwen25), media, "direct", 32768, None)


def test_eval_refuses_media_outside_the_benchmark_folder(folders, tiny_qwen25):
    assert Config().allow_outside_root is False
    record = {"problem_id": "x", "problem": "What is shown?", "problem_type": "boolean",
              "solution": "<answer>yes</answer>", "path": "../elsewhere.mp4", "data_type": "video",
              ROOT_KEY: str(folders / "bench")}  # fmt: skip
    with pytest.raises(SampleError) as err:
        _maker(tiny_qwen25, allow=False).prepare(record)
    assert err.value.reason == "media_outside_root" and "allow_outside_root=true" in str(err.value)
    assert _maker(tiny_qwen25, allow=True).prepare(record).input_ids.numel() > 0
