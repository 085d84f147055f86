"""GPU tier: cache frames handed over as uint8 patches are normalised on the GPU by the model's first
operation. Modelled on test_uint8_patches.py: the normaliser on CUDA gives the HF processor's float32
values (IEEE subtraction and division: bit-identical on CPU and GPU), and a bf16 model on CUDA gives the
same logits for uint8 patches as for the host-normalised float ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cache_builder.processor_inputs import processor_kwargs
from vrl.models.loading import load_hf_model, load_processor
from vrl.models.pixels import UInt8PatchNormalizer

pytestmark = pytest.mark.gpu

FACTOR = {"tiny-qwen2.5-vl": 28, "tiny-qwen3-vl": 32}


def _inputs(processor, name: str) -> dict:
    f = FACTOR[name]
    frames = np.random.RandomState(0).randint(0, 256, (4, 3, 2 * f, 3 * f), dtype=np.uint8)
    meta = {"fps": 4.0, "frames_indices": [0, 2, 4, 6], "total_num_frames": 8, "duration": 2.0}
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is it?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], return_tensors="pt", **processor_kwargs(videos=[(frames, meta)]))


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_uint8_patches_normalised_on_the_gpu(built_models, name):
    cuda = torch.device("cuda")
    path = built_models[name]
    hf = _inputs(load_processor(path, fast_video=False), name)
    u8 = _inputs(load_processor(path, uint8_patches=True), name)
    assert u8["pixel_values_videos"].dtype == torch.uint8
    on_gpu = UInt8PatchNormalizer(path)(u8["pixel_values_videos"].to(cuda))
    assert on_gpu.device.type == "cuda"
    assert torch.equal(on_gpu.cpu(), hf["pixel_values_videos"])

    model = load_hf_model(path, dtype=torch.bfloat16, device=cuda).eval()
    with torch.no_grad():
        want = model(**{k: v.to(cuda) for k, v in hf.items()}).logits
        got = model(**{k: v.to(cuda) for k, v in u8.items()}).logits
    torch.testing.assert_close(got, want, atol=2e-2, rtol=0)  # same inputs; kernels may differ by an ulp
