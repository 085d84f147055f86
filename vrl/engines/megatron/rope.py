"""Multimodal rotary position embedding for Megatron's GPTModel: Qwen2.5-VL sections and Qwen3-VL interleaving.

Why a module of our own: megatron-core 0.16.1 only has the sectioned variant (``MultimodalRotaryEmbedding``,
whose constructor also pins its frequencies to the current CUDA device), while Qwen3-VL assigns
rotary frequencies to (t, h, w) round-robin over the first ``3 × section`` channels. Both layouts are
computed here with the same arithmetic as the HF models, and the module is swapped into
``GPTModel.rotary_pos_emb`` (same call signature), which then applies it exactly like its own.
"""

from __future__ import annotations

import torch
from torch import nn


def mrope_frequencies(
    position_ids: torch.Tensor, inv_freq: torch.Tensor, section: tuple[int, int, int], interleaved: bool
) -> torch.Tensor:
    """Per-token rotary angles.

    ``position_ids`` (3, B, S) temporal/height/width positions; ``inv_freq`` (D/2,); returns (B, S, D/2):
    frequency j takes its angle from the axis that owns channel j (contiguous sections, or j mod 3 within
    the first 3×section channels when interleaved).
    """
    freqs = position_ids[..., None].float() * inv_freq.float()  # (3, B, S, D/2)
    if not interleaved:
        return torch.cat([part[i % 3] for i, part in enumerate(freqs.split(list(section), dim=-1))], dim=-1)
    out = freqs[0].clone()
    for axis in (1, 2):
        idx = slice(axis, section[axis] * 3, 3)
        out[..., idx] = freqs[axis][..., idx]
    return out


class QwenMRoPE(nn.Module):
    """``forward(position_ids (3, B, S), mrope_section, cp_group=None) -> (S, B, 1, D)`` rotary angles."""

    def __init__(self, head_dim: int, theta: float, section: tuple[int, int, int], interleaved: bool) -> None:
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.section = tuple(section)
        self.interleaved = interleaved

    def forward(self, position_ids: torch.Tensor, mrope_section=None, cp_group=None) -> torch.Tensor:
        if cp_group is not None and cp_group.size() > 1:
            raise NotImplementedError("context parallelism is not supported by the Qwen-VL megatron engine")
        freqs = mrope_frequencies(
            position_ids.to(self.inv_freq.device), self.inv_freq, self.section, self.interleaved
        )
        emb = torch.cat((freqs, freqs), dim=-1)  # rotate-half layout, as the HF models
        return emb.transpose(0, 1)[:, :, None, :].contiguous()
