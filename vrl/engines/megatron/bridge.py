"""HF ↔ Megatron-Core weight mapping for the Qwen-VL language decoder (pure tensor functions, no process groups).

Every Megatron parameter of the decoder is one :class:`Rule`: which HF tensors it is built from and how
they are laid out over tensor-parallel ranks. Two layouts need care (both caught only by TP=2 parity):

- fused QKV with grouped-query attention: Megatron stores, per KV group, that group's query heads, then
  its key head, then its value head (``[q_g0 …, k_g0, v_g0, q_g1 …]``), and tensor parallelism splits
  whole groups; a plain ``[Q; K; V]`` concatenation attends with the wrong heads;
- the gated MLP's ``linear_fc1`` holds ``[gate_i; up_i]`` per rank: gate and up are split separately,
  never the fused ``[G; U]`` as one tensor.

All conversions are copies and reshapes, so HF → Megatron → HF is bit-exact. The vision tower is the HF
module itself and keeps its HF names (under ``model.visual.``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from vrl.engines.megatron.spec import DecoderSpec

HF_TEXT = "model.language_model."
HF_VISION = "model.visual."
HF_LM_HEAD = "lm_head.weight"
HF_EMBED = HF_TEXT + "embed_tokens.weight"

KINDS = ("replicated", "column", "row", "vocab", "qkv", "fc1")


@dataclass(frozen=True)
class Rule:
    """How one Megatron tensor is made from HF tensors ``hf`` on each of ``tp`` ranks."""

    kind: str
    """replicated | column (split rows) | row (split columns) | vocab (split rows) | qkv | fc1."""
    hf: tuple[str, ...]


def layer_rules(spec: DecoderSpec) -> dict[str, Rule]:
    """Megatron names inside ``decoder.layers.<i>.`` → rule with HF names relative to ``layers.<g>.``."""
    proj = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
    rules = {
        "input_layernorm.weight": Rule("replicated", ("input_layernorm.weight",)),
        "self_attention.linear_qkv.weight": Rule("qkv", tuple(p + ".weight" for p in proj)),
        "self_attention.linear_proj.weight": Rule("row", ("self_attn.o_proj.weight",)),
        "pre_mlp_layernorm.weight": Rule("replicated", ("post_attention_layernorm.weight",)),
        "mlp.linear_fc1.weight": Rule("fc1", ("mlp.gate_proj.weight", "mlp.up_proj.weight")),
        "mlp.linear_fc2.weight": Rule("row", ("mlp.down_proj.weight",)),
    }
    if spec.qkv_bias:
        rules["self_attention.linear_qkv.bias"] = Rule("qkv", tuple(p + ".bias" for p in proj))
    if spec.qk_norm:
        rules["self_attention.q_layernorm.weight"] = Rule("replicated", ("self_attn.q_norm.weight",))
        rules["self_attention.k_layernorm.weight"] = Rule("replicated", ("self_attn.k_norm.weight",))
    return rules


def stage_layers(spec: DecoderSpec, pp: int, pp_rank: int) -> range:
    """Global decoder-layer indices held by pipeline stage ``pp_rank``."""
    per = spec.num_layers // pp
    return range(pp_rank * per, (pp_rank + 1) * per)


def stage_rules(spec: DecoderSpec, pp: int, pp_rank: int) -> dict[str, Rule]:
    """Every Megatron decoder tensor of one pipeline stage (names as in ``GPTModel.state_dict()``)."""
    rules: dict[str, Rule] = {}
    first, last = pp_rank == 0, pp_rank == pp - 1
    if first:
        rules["embedding.word_embeddings.weight"] = Rule("vocab", (HF_EMBED,))
    per_layer = layer_rules(spec)
    for local, g in enumerate(stage_layers(spec, pp, pp_rank)):
        for name, rule in per_layer.items():
            hf = tuple(f"{HF_TEXT}layers.{g}.{h}" for h in rule.hf)
            rules[f"decoder.layers.{local}.{name}"] = Rule(rule.kind, hf)
    if last:
        rules["decoder.final_layernorm.weight"] = Rule("replicated", (HF_TEXT + "norm.weight",))
        if not spec.tied_embeddings:
            rules["output_layer.weight"] = Rule("vocab", (HF_LM_HEAD,))
        elif not first:
            # a tied model's last stage holds a copy of the embedding (gradients are summed with stage 0's)
            rules["output_layer.weight"] = Rule("vocab", (HF_EMBED,))
    return rules


def is_duplicate(name: str, spec: DecoderSpec, pp: int, pp_rank: int) -> bool:
    """A Megatron tensor that mirrors another stage's (the tied output layer on the last of several stages)."""
    return name == "output_layer.weight" and spec.tied_embeddings and pp > 1 and pp_rank == pp - 1


# ---- one tensor: HF → this rank's shard ------------------------------------------------------------
def _qkv_groups(spec: DecoderSpec, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(num_kv_heads, (heads_per_group + 2) × head_dim, *rest): per KV group [its queries; key; value]."""
    g, d = spec.num_kv_heads, spec.head_dim
    rest = q.shape[1:]
    return torch.cat([q.reshape(g, -1, *rest), k.reshape(g, d, *rest), v.reshape(g, d, *rest)], dim=1)


def to_megatron(rule: Rule, hf: list[torch.Tensor], spec: DecoderSpec, tp_rank: int, tp: int) -> torch.Tensor:
    """This tensor-parallel rank's Megatron tensor from the full HF tensors named by ``rule.hf``."""
    if rule.kind == "replicated":
        return hf[0].clone()
    if rule.kind in ("column", "vocab"):
        return hf[0].chunk(tp, dim=0)[tp_rank].clone()
    if rule.kind == "row":
        return hf[0].chunk(tp, dim=1)[tp_rank].clone()
    if rule.kind == "qkv":
        groups = _qkv_groups(spec, *hf).chunk(tp, dim=0)[tp_rank]
        return groups.reshape(-1, *groups.shape[2:]).clone()
    if rule.kind == "fc1":
        gate, up = (t.chunk(tp, dim=0)[tp_rank] for t in hf)
        return torch.cat([gate, up], dim=0)
    raise ValueError(f"unknown rule kind '{rule.kind}'. Known: {', '.join(KINDS)}")


# ---- one tensor: all ranks' shards → HF ----------------------------------------------------------------
def to_hf(rule: Rule, shards: list[torch.Tensor], spec: DecoderSpec) -> list[torch.Tensor]:
    """The full HF tensors (in ``rule.hf`` order) from every tensor-parallel rank's shard (rank order)."""
    if rule.kind == "replicated":
        return [shards[0].clone()]
    if rule.kind in ("column", "vocab"):
        return [torch.cat(shards, dim=0)]
    if rule.kind == "row":
        return [torch.cat(shards, dim=1)]
    if rule.kind == "qkv":
        g, d = spec.num_kv_heads, spec.head_dim
        rest = shards[0].shape[1:]
        groups = torch.cat(shards, dim=0).reshape(g, -1, *rest)
        q_rows = groups.shape[1] - 2 * d
        q, k, v = groups.split([q_rows, d, d], dim=1)
        return [t.reshape(-1, *rest).clone() for t in (q, k, v)]
    if rule.kind == "fc1":
        halves = [s.chunk(2, dim=0) for s in shards]
        return [torch.cat([h[0] for h in halves], dim=0), torch.cat([h[1] for h in halves], dim=0)]
    raise ValueError(f"unknown rule kind '{rule.kind}'. Known: {', '.join(KINDS)}")


# ---- checkpoint names ----------------------------------------------------------------------------------
_LEGACY_TEXT = re.compile(r"^model\.(?!language_model\.|visual\.)")


def module_name(checkpoint_key: str) -> str:
    """The HF module name of a checkpoint key: Qwen2.5-VL checkpoints store ``model.layers…``/``visual…``
    (the pre-5.x layout transformers still writes for it), modules are ``model.language_model…``/``model.visual…``."""
    if checkpoint_key.startswith("visual."):
        return "model." + checkpoint_key
    return _LEGACY_TEXT.sub("model.language_model.", checkpoint_key, count=1)
