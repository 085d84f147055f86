"""Multimodal RoPE for GPTModel equals the HF rotary embeddings (sectioned Qwen2.5-VL, interleaved Qwen3-VL)."""

from __future__ import annotations

import pytest
import torch

from vrl.engines.megatron.rope import QwenMRoPE
from vrl.engines.megatron.spec import DecoderSpec


def _hf_rotary(config):
    text = config.get_text_config()
    if config.model_type == "qwen3_vl":
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding as cls
    else:
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRotaryEmbedding as cls
    return cls(text)


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_angles_equal_hf_cos_and_sin(name, mg_models):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(mg_models[name])
    spec = DecoderSpec.from_hf_config(config)
    gen = torch.Generator().manual_seed(0)
    positions = torch.randint(0, 300, (3, 2, 17), generator=gen)  # (3, B, S), distinct t/h/w
    cos, sin = _hf_rotary(config)(torch.zeros(1, dtype=torch.float32), positions)  # (B, S, D)
    rope = QwenMRoPE(spec.head_dim, spec.rope_theta, spec.mrope_section, spec.mrope_interleaved)
    emb = rope(positions, list(spec.mrope_section))  # (S, B, 1, D)
    assert emb.shape == (17, 2, 1, spec.head_dim)
    angles = emb[:, :, 0].transpose(0, 1)
    torch.testing.assert_close(angles.cos(), cos, rtol=0, atol=1e-6)
    torch.testing.assert_close(angles.sin(), sin, rtol=0, atol=1e-6)


def test_interleaving_matters():
    """The two layouts differ once the axes carry different positions (a wrong layout cannot pass)."""
    positions = torch.stack([torch.arange(10), torch.arange(10) * 3, torch.arange(10) * 7])[:, None, :]
    a = QwenMRoPE(32, 1e6, (6, 5, 5), interleaved=True)(positions)
    b = QwenMRoPE(32, 1e6, (6, 5, 5), interleaved=False)(positions)
    assert not torch.allclose(a, b)
