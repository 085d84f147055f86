"""Every parameter tensor of a Qwen-VL policy, as the engines hold it, listed from :mod:`shapes` alone.

Two layouts: the Hugging Face module (what the FSDP engine shards, with HF names) and one Megatron
pipeline stage on one tensor-parallel rank (what the Megatron engine allocates: its decoder slice of
``GPTModel`` plus, on stage 0, the HF vision tower). The tests check both lists name for name and shape
for shape against the engines' own modules, so byte counts built on them are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from vrl.planner.shapes import ModelShapes, TextShapes, VisionShapes

PARTS = ("vision", "embedding", "decoder", "output")


@dataclass(frozen=True)
class ParamShape:
    name: str
    shape: tuple[int, ...]
    part: str
    """vision | embedding | decoder (layers and final norm) | output (an untied LM head)."""

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def vision_parameters(v: VisionShapes, family: str, prefix: str) -> list[ParamShape]:
    """The HF vision tower's parameters (patch embedding, blocks, merger, DeepStack mergers)."""
    out: list[ParamShape] = []

    def add(name: str, *shape: int) -> None:
        out.append(ParamShape(prefix + name, tuple(shape), "vision"))

    h, i, m2 = v.hidden, v.intermediate, v.spatial_merge_size**2
    qwen3 = family == "qwen3_vl"
    add("patch_embed.proj.weight", h, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size)
    if qwen3:
        add("patch_embed.proj.bias", h)
        add("pos_embed.weight", v.num_position_embeddings, h)
    for b in range(v.depth):
        p = f"blocks.{b}."
        add(p + "norm1.weight", h)
        if qwen3:
            add(p + "norm1.bias", h)
        add(p + "norm2.weight", h)
        if qwen3:
            add(p + "norm2.bias", h)
        add(p + "attn.qkv.weight", 3 * h, h)
        add(p + "attn.qkv.bias", 3 * h)
        add(p + "attn.proj.weight", h, h)
        add(p + "attn.proj.bias", h)
        mlp = ("linear_fc1", "linear_fc2") if qwen3 else ("gate_proj", "up_proj", "down_proj")
        for name in mlp[:-1]:
            add(p + f"mlp.{name}.weight", i, h)
            add(p + f"mlp.{name}.bias", i)
        add(p + f"mlp.{mlp[-1]}.weight", h, i)
        add(p + f"mlp.{mlp[-1]}.bias", h)
    if qwen3:
        mergers = [("merger.", h)] + [(f"deepstack_merger_list.{k}.", h * m2) for k in range(v.deepstack)]
        for p, norm_width in mergers:
            add(p + "norm.weight", norm_width)
            add(p + "norm.bias", norm_width)
            add(p + "linear_fc1.weight", h * m2, h * m2)
            add(p + "linear_fc1.bias", h * m2)
            add(p + "linear_fc2.weight", v.out_hidden, h * m2)
            add(p + "linear_fc2.bias", v.out_hidden)
    else:
        add("merger.ln_q.weight", h)
        add("merger.mlp.0.weight", h * m2, h * m2)
        add("merger.mlp.0.bias", h * m2)
        add("merger.mlp.2.weight", v.out_hidden, h * m2)
        add("merger.mlp.2.bias", v.out_hidden)
    return out


def _hf_layer(t: TextShapes, prefix: str, o_bias: bool) -> list[ParamShape]:
    h = t.hidden
    out = [
        ParamShape(prefix + "self_attn.q_proj.weight", (t.q_dim, h), "decoder"),
        ParamShape(prefix + "self_attn.k_proj.weight", (t.kv_dim, h), "decoder"),
        ParamShape(prefix + "self_attn.v_proj.weight", (t.kv_dim, h), "decoder"),
        ParamShape(prefix + "self_attn.o_proj.weight", (h, t.q_dim), "decoder"),
        ParamShape(prefix + "mlp.gate_proj.weight", (t.intermediate, h), "decoder"),
        ParamShape(prefix + "mlp.up_proj.weight", (t.intermediate, h), "decoder"),
        ParamShape(prefix + "mlp.down_proj.weight", (h, t.intermediate), "decoder"),
        ParamShape(prefix + "input_layernorm.weight", (h,), "decoder"),
        ParamShape(prefix + "post_attention_layernorm.weight", (h,), "decoder"),
    ]
    if t.qkv_bias:
        for name, width in (("q_proj", t.q_dim), ("k_proj", t.kv_dim), ("v_proj", t.kv_dim)):
            out.append(ParamShape(prefix + f"self_attn.{name}.bias", (width,), "decoder"))
    if o_bias:
        out.append(ParamShape(prefix + "self_attn.o_proj.bias", (h,), "decoder"))
    if t.qk_norm:
        out.append(ParamShape(prefix + "self_attn.q_norm.weight", (t.head_dim,), "decoder"))
        out.append(ParamShape(prefix + "self_attn.k_norm.weight", (t.head_dim,), "decoder"))
    return out


@lru_cache(maxsize=32)
def hf_parameters(s: ModelShapes) -> tuple[ParamShape, ...]:
    """The ``*ForConditionalGeneration`` module's parameters (a tied LM head is the embedding: once)."""
    t = s.text
    out = vision_parameters(s.vision, s.family, "model.visual.")
    text = "model.language_model."
    out.append(ParamShape(text + "embed_tokens.weight", (t.vocab, t.hidden), "embedding"))
    o_bias = s.family == "qwen3_vl" and t.qkv_bias  # Qwen3's attention_bias also covers o_proj
    for i in range(t.layers):
        out.extend(_hf_layer(t, f"{text}layers.{i}.", o_bias))
    out.append(ParamShape(text + "norm.weight", (t.hidden,), "decoder"))
    if not t.tied_embeddings:
        out.append(ParamShape("lm_head.weight", (t.vocab, t.hidden), "output"))
    return tuple(out)


@lru_cache(maxsize=32)
def total_numel(s: ModelShapes) -> int:
    """Parameters of the whole model."""
    return sum(p.numel for p in hf_parameters(s))


@lru_cache(maxsize=32)
def hf_layer_numel(s: ModelShapes) -> int:
    """Parameters of one HF decoder layer (one FSDP unit)."""
    o_bias = s.family == "qwen3_vl" and s.text.qkv_bias
    return sum(p.numel for p in _hf_layer(s.text, "", o_bias))


@lru_cache(maxsize=256)
def megatron_parameters(s: ModelShapes, tp: int, pp: int, pp_rank: int) -> tuple[ParamShape, ...]:
    """One tensor-parallel rank's parameters of pipeline stage ``pp_rank`` (identical on every TP rank), in
    the stage module's ``named_parameters()`` order (the distributed optimizer's buffer layout follows it).

    Column/row-parallel weights and the vocabulary are divided by ``tp``; norms (and Qwen3's q/k norms)
    are replicated; the HF vision tower is whole on every rank of stage 0. A tied embedding split over
    first and last stage exists on both (the last stage's ``output_layer`` is the copy)."""
    t = s.text
    if t.layers % pp or t.vocab % tp or t.intermediate % tp or t.heads % tp or t.kv_heads % tp:
        raise ValueError(
            f"TP={tp} × PP={pp} does not divide this model (see the megatron engine's layout check)"
        )
    out: list[ParamShape] = []
    h = t.hidden
    first, last = pp_rank == 0, pp_rank == pp - 1
    if first:
        out.append(ParamShape("gpt.embedding.word_embeddings.weight", (t.vocab // tp, h), "embedding"))
    for i in range(t.layers // pp):
        p = f"gpt.decoder.layers.{i}."
        qkv = (t.q_dim + 2 * t.kv_dim) // tp
        out += [
            ParamShape(p + "input_layernorm.weight", (h,), "decoder"),
            ParamShape(p + "self_attention.linear_proj.weight", (h, t.q_dim // tp), "decoder"),
            ParamShape(p + "self_attention.linear_qkv.weight", (qkv, h), "decoder"),
        ]
        if t.qkv_bias:
            out.append(ParamShape(p + "self_attention.linear_qkv.bias", (qkv,), "decoder"))
        if t.qk_norm:
            out.append(ParamShape(p + "self_attention.q_layernorm.weight", (t.head_dim,), "decoder"))
            out.append(ParamShape(p + "self_attention.k_layernorm.weight", (t.head_dim,), "decoder"))
        out += [
            ParamShape(p + "pre_mlp_layernorm.weight", (h,), "decoder"),
            ParamShape(p + "mlp.linear_fc1.weight", (2 * t.intermediate // tp, h), "decoder"),
            ParamShape(p + "mlp.linear_fc2.weight", (h, t.intermediate // tp), "decoder"),
        ]
    if last:
        out.append(ParamShape("gpt.decoder.final_layernorm.weight", (h,), "decoder"))
        if not t.tied_embeddings or pp > 1:
            out.append(ParamShape("gpt.output_layer.weight", (t.vocab // tp, h), "output"))
    if first:
        out.extend(vision_parameters(s.vision, s.family, "vision."))
    return tuple(out)


@lru_cache(maxsize=256)
def megatron_numel(s: ModelShapes, tp: int, pp: int, pp_rank: int) -> int:
    """Parameters of one rank of stage ``pp_rank``."""
    return sum(p.numel for p in megatron_parameters(s, tp, pp, pp_rank))
