"""What the Megatron engine needs to know about a Qwen-VL checkpoint's language decoder, read from its HF config.

One frozen record per checkpoint, built without importing megatron-core or building a model, so layout
checks (:mod:`vrl.engines.megatron.layout`) can run in a config's ``validate()`` before any process group
exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAMILIES = {"qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl"}


@dataclass(frozen=True)
class DecoderSpec:
    """The language decoder of a Qwen-VL model, in the terms a Megatron ``TransformerConfig`` uses."""

    family: str
    """``qwen2_5_vl`` or ``qwen3_vl``."""
    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    rms_eps: float
    rope_theta: float
    mrope_section: tuple[int, int, int]
    """(t, h, w) rotary frequency counts; they sum to head_dim / 2."""
    mrope_interleaved: bool
    """Qwen3-VL interleaves t/h/w frequencies; Qwen2.5-VL uses contiguous sections."""
    qkv_bias: bool
    qk_norm: bool
    """Qwen3: RMSNorm over each query/key head before RoPE."""
    tied_embeddings: bool
    num_deepstack: int
    """Qwen3-VL DeepStack: vision features added after this many first decoder layers."""
    attention_dropout: float
    image_token_id: int
    video_token_id: int

    @classmethod
    def from_hf_config(cls, config: Any) -> DecoderSpec:
        model_type = getattr(config, "model_type", "")
        if model_type not in FAMILIES:
            raise ValueError(
                f"the megatron engine supports {sorted(FAMILIES)} checkpoints, got model_type '{model_type}'"
            )
        text = config.get_text_config()
        rope = dict(getattr(text, "rope_parameters", None) or getattr(text, "rope_scaling", None) or {})
        if rope.get("rope_type", "default") not in ("default", "mrope"):
            raise ValueError(f"unsupported rope_type '{rope.get('rope_type')}' (only default M-RoPE)")
        head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads)
        section = tuple(int(x) for x in rope.get("mrope_section", ()))
        if len(section) != 3 or sum(section) != head_dim // 2:
            raise ValueError(
                f"mrope_section {section} must have 3 entries summing to head_dim/2={head_dim // 2}"
            )
        if getattr(text, "hidden_act", "silu") != "silu":
            raise ValueError(f"only SwiGLU decoders (hidden_act=silu) map to Megatron, got {text.hidden_act}")
        qwen3 = model_type == "qwen3_vl"
        if qwen3 and getattr(text, "attention_bias", False):
            raise ValueError(
                "Qwen3-VL with attention_bias=True is not supported (o_proj bias has no mapping)"
            )
        deepstack = (
            list(getattr(config.vision_config, "deepstack_visual_indexes", None) or []) if qwen3 else []
        )
        tied = bool(getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings", False)))
        return cls(
            family=FAMILIES[model_type],
            num_layers=int(text.num_hidden_layers),
            hidden_size=int(text.hidden_size),
            ffn_hidden_size=int(text.intermediate_size),
            num_heads=int(text.num_attention_heads),
            num_kv_heads=int(text.num_key_value_heads),
            head_dim=head_dim,
            vocab_size=int(text.vocab_size),
            rms_eps=float(text.rms_norm_eps),
            rope_theta=float(rope.get("rope_theta", getattr(text, "rope_theta", 10000.0))),
            mrope_section=section,  # type: ignore[arg-type]
            mrope_interleaved=bool(rope.get("mrope_interleaved", qwen3)),
            qkv_bias=not qwen3,
            qk_norm=qwen3,
            tied_embeddings=tied,
            num_deepstack=len(deepstack),
            attention_dropout=float(getattr(text, "attention_dropout", 0.0) or 0.0),
            image_token_id=int(config.image_token_id),
            video_token_id=int(config.video_token_id),
        )

    @classmethod
    def from_pretrained(cls, path: str | Path) -> DecoderSpec:
        from transformers import AutoConfig

        from vrl.models.tiny import resolve_model

        return cls.from_hf_config(AutoConfig.from_pretrained(str(resolve_model(path))))
