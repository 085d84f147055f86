"""uint8 video patches: the data path leaves normalisation to the model, and the model's hook produces
exactly the HF processor's float32 values, for both families; mixing both kinds in one batch is refused."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from cache_builder.processor_inputs import processor_kwargs
from vrl.batch import Prompt, cat_vision
from vrl.models.loading import load_hf_model, load_processor
from vrl.models.pixels import UInt8PatchNormalizer, accept_uint8_patches_tower

FACTOR = {"tiny-qwen2.5-vl": 28, "tiny-qwen3-vl": 32}


def _inputs(processor, name: str) -> dict:
    f = FACTOR[name]
    frames = np.random.RandomState(0).randint(0, 256, (4, 3, 2 * f, 3 * f), dtype=np.uint8)
    meta = {"fps": 4.0, "frames_indices": [0, 2, 4, 6], "total_num_frames": 8, "duration": 2.0}
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is it?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], return_tensors="pt", **processor_kwargs(videos=[(frames, meta)]))


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_uint8_patches_normalised_by_the_model_equal_the_hf_processor(built_models, name):
    path = built_models[name]
    hf = _inputs(load_processor(path, fast_video=False), name)  # the plain HF processor
    u8 = _inputs(load_processor(path, uint8_patches=True), name)
    assert hf["pixel_values_videos"].dtype == torch.float32 and u8["pixel_values_videos"].dtype == torch.uint8
    assert torch.equal(u8["input_ids"], hf["input_ids"])
    assert torch.equal(u8["video_grid_thw"], hf["video_grid_thw"])
    normalized = UInt8PatchNormalizer(path)(u8["pixel_values_videos"])
    assert torch.equal(normalized, hf["pixel_values_videos"])

    model = load_hf_model(path).eval()  # carries the hook
    with torch.no_grad():
        want = model(**hf).logits
        got = model(**u8).logits
        assert torch.equal(got, want)
        copied = copy.deepcopy(model)  # the override follows the copy (bound to the copied module)
        assert torch.equal(copied(**u8).logits, want)
        tower = accept_uint8_patches_tower(copy.deepcopy(model.model.visual), path)  # Megatron's stage
        grid = hf["video_grid_thw"]
        a = tower(hf["pixel_values_videos"], grid_thw=grid).pooler_output
        b = tower(u8["pixel_values_videos"], grid_thw=grid).pooler_output
        assert torch.equal(a, b)


def test_wrong_patch_width_is_refused(built_models):
    norm = UInt8PatchNormalizer(built_models["tiny-qwen2.5-vl"])
    with pytest.raises(ValueError, match="values per patch"):
        norm(torch.zeros(4, 10, dtype=torch.uint8))
    floats = torch.zeros(4, 10)
    assert norm(floats) is floats


def test_a_batch_mixing_uint8_and_float_patches_is_refused():
    def prompt(dtype: torch.dtype) -> Prompt:
        return Prompt(record={}, input_ids=torch.zeros(3, dtype=torch.long), text="",
                      vision={"pixel_values_videos": torch.zeros(2, 8, dtype=dtype)})  # fmt: skip

    assert cat_vision([prompt(torch.uint8)] * 2)["pixel_values_videos"].shape == (4, 8)
    with pytest.raises(ValueError, match="mixes dtypes"):
        cat_vision([prompt(torch.uint8), prompt(torch.float32)])
