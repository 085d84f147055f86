"""The shapes of a Qwen-VL checkpoint that memory depends on, read from its ``config.json`` alone.

Why: a 72B model is planned on a laptop, so no weights, no ``transformers`` config classes and no model
construction: a plain JSON read. Both config layouts are accepted: the text fields at the top level (the
original Qwen2.5-VL releases) or under ``text_config`` (transformers 5 and Qwen3-VL). A field the
planner needs and cannot default is reported by name instead of guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAMILIES = {"qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl"}


@dataclass(frozen=True)
class TextShapes:
    """The language decoder."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    """SwiGLU width (gate and up projections each have this many rows)."""
    vocab: int
    tied_embeddings: bool
    """The LM head reuses the token embedding (one tensor, counted once)."""
    qkv_bias: bool
    """Qwen2.5: q/k/v projections carry a bias."""
    qk_norm: bool
    """Qwen3: RMSNorm over each query and key head."""

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class VisionShapes:
    """The vision tower (ViT + patch merger)."""

    depth: int
    hidden: int
    intermediate: int
    heads: int
    out_hidden: int
    """Merger output width (= the decoder's hidden size)."""
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int
    in_channels: int
    num_position_embeddings: int
    """Qwen3-VL learned position table rows; 0 for Qwen2.5-VL (rotary only)."""
    deepstack: int
    """Qwen3-VL DeepStack mergers (one per ``deepstack_visual_indexes`` entry); 0 for Qwen2.5-VL."""

    @property
    def patch_values(self) -> int:
        """Values of one flattened input patch: channels × temporal × patch × patch."""
        return self.in_channels * self.temporal_patch_size * self.patch_size**2


@dataclass(frozen=True)
class ModelShapes:
    family: str
    """``qwen2_5_vl`` or ``qwen3_vl``."""
    text: TextShapes
    vision: VisionShapes

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelShapes:
        """Shapes from a parsed ``config.json``; raises ValueError naming a missing field."""
        model_type = config.get("model_type", "")
        if model_type not in FAMILIES:
            raise ValueError(
                f"the memory planner knows {sorted(FAMILIES)} checkpoints, got model_type '{model_type}'"
            )
        qwen3 = model_type == "qwen3_vl"
        text_cfg = config.get("text_config") or config
        vision_cfg = config.get("vision_config") or {}
        need = _reader(text_cfg, "text config")
        need_v = _reader(vision_cfg, "vision_config")
        hidden, heads = need("hidden_size"), need("num_attention_heads")
        tied = text_cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
        text = TextShapes(
            hidden=hidden,
            layers=need("num_hidden_layers"),
            heads=heads,
            kv_heads=int(text_cfg.get("num_key_value_heads") or heads),
            head_dim=int(text_cfg.get("head_dim") or hidden // heads),
            intermediate=need("intermediate_size"),
            vocab=need("vocab_size"),
            tied_embeddings=bool(tied),
            qkv_bias=bool(text_cfg.get("attention_bias", False)) if qwen3 else True,
            qk_norm=qwen3,
        )
        vision = VisionShapes(
            depth=need_v("depth"),
            hidden=need_v("hidden_size"),
            intermediate=need_v("intermediate_size"),
            heads=need_v("num_heads"),
            out_hidden=int(vision_cfg.get("out_hidden_size") or hidden),
            patch_size=need_v("patch_size"),
            temporal_patch_size=int(vision_cfg.get("temporal_patch_size", 2)),
            spatial_merge_size=int(vision_cfg.get("spatial_merge_size", 2)),
            in_channels=int(vision_cfg.get("in_channels") or vision_cfg.get("in_chans") or 3),
            num_position_embeddings=need_v("num_position_embeddings") if qwen3 else 0,
            deepstack=len(vision_cfg.get("deepstack_visual_indexes") or []) if qwen3 else 0,
        )
        return cls(FAMILIES[model_type], text, vision)


def _reader(section: dict[str, Any], where: str):
    def need(key: str) -> int:
        if section.get(key) is None:
            raise ValueError(f"config.json has no '{key}' in its {where}: cannot plan memory without it")
        return int(section[key])

    return need


def read_shapes(model: str | Path) -> ModelShapes:
    """Shapes of a registered tiny model (built on first use, as the train stage does) or of a model
    directory, from its ``config.json`` only."""
    from vrl.models.tiny import resolve_model

    path = resolve_model(model) / "config.json"
    return ModelShapes.from_config(json.loads(path.read_text()))
