"""HF ↔ Megatron tensor mapping: layouts Megatron's attention and MLP read, bit-exact round trips."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_layout import _spec

from vrl.engines.megatron import bridge
from vrl.engines.megatron.bridge import Rule, to_hf, to_megatron


def _round_trip(rule: Rule, hf: list[torch.Tensor], spec, tp: int) -> list[torch.Tensor]:
    shards = [to_megatron(rule, hf, spec, r, tp) for r in range(tp)]
    return to_hf(rule, shards, spec)


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("kind", ["replicated", "column", "row", "vocab"])
def test_simple_kinds_round_trip_bit_exact(kind, tp):
    spec = _spec()
    t = torch.randn(8, 6)
    assert torch.equal(_round_trip(Rule(kind, ("w",)), [t], spec, tp)[0], t)


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_qkv_round_trip_bit_exact(tp, bias):
    spec = _spec()
    h, d = spec.hidden_size, spec.head_dim
    shape = (lambda rows: (rows,)) if bias else (lambda rows: (rows, h))
    q, k, v = (torch.randn(shape(n * d)) for n in (spec.num_heads, spec.num_kv_heads, spec.num_kv_heads))
    back = _round_trip(Rule("qkv", ("q", "k", "v")), [q, k, v], spec, tp)
    assert all(torch.equal(a, b) for a, b in zip(back, (q, k, v)))


@pytest.mark.parametrize("tp", [1, 2])
def test_qkv_shard_is_what_megatron_attention_reads(tp):
    """Megatron views a rank's fused QKV rows as (groups, heads_per_group + 2, head_dim): per KV group its
    query heads, then its key head, then its value head. Each must be the matching HF head."""
    spec = dataclasses.replace(_spec(), num_heads=8, num_kv_heads=2, head_dim=4, hidden_size=32)
    d, per_group = spec.head_dim, spec.num_heads // spec.num_kv_heads
    q = torch.randn(spec.num_heads * d, 5)
    k = torch.randn(spec.num_kv_heads * d, 5)
    v = torch.randn(spec.num_kv_heads * d, 5)
    groups_per_rank = spec.num_kv_heads // tp
    for rank in range(tp):
        fused = to_megatron(Rule("qkv", ("q", "k", "v")), [q, k, v], spec, rank, tp)
        view = fused.view(groups_per_rank, per_group + 2, d, 5)
        for local in range(groups_per_rank):
            g = rank * groups_per_rank + local
            for j in range(per_group):
                head = g * per_group + j
                assert torch.equal(view[local, j], q[head * d : (head + 1) * d])
            assert torch.equal(view[local, per_group], k[g * d : (g + 1) * d])
            assert torch.equal(view[local, per_group + 1], v[g * d : (g + 1) * d])


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_fc1_holds_gate_then_up_of_the_same_columns(tp):
    spec = _spec()
    gate, up = torch.randn(spec.ffn_hidden_size, 3), torch.randn(spec.ffn_hidden_size, 3)
    width = spec.ffn_hidden_size // tp
    for rank in range(tp):
        fc1 = to_megatron(Rule("fc1", ("g", "u")), [gate, up], spec, rank, tp)
        assert torch.equal(fc1[:width], gate[rank * width : (rank + 1) * width])
        assert torch.equal(fc1[width:], up[rank * width : (rank + 1) * width])
    back = _round_trip(Rule("fc1", ("g", "u")), [gate, up], spec, tp)
    assert torch.equal(back[0], gate) and torch.equal(back[1], up)


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known: replicated"):
        to_megatron(Rule("diagonal", ("x",)), [torch.zeros(2, 2)], _spec(), 0, 1)


@pytest.mark.parametrize("pp", [1, 2, 4])
def test_stage_rules_cover_every_decoder_tensor_once(pp):
    spec = _spec()
    seen: list[str] = []
    for stage in range(pp):
        for name, rule in bridge.stage_rules(spec, pp, stage).items():
            if not bridge.is_duplicate(name, spec, pp, stage):
                seen.extend(rule.hf)
    assert len(seen) == len(set(seen))
    layers = {f"{bridge.HF_TEXT}layers.{i}.self_attn.o_proj.weight" for i in range(spec.num_layers)}
    assert layers <= set(seen) and bridge.HF_EMBED in seen and f"{bridge.HF_TEXT}norm.weight" in seen


def test_untied_model_maps_the_lm_head():
    spec = _spec(tied_embeddings=False)
    last = bridge.stage_rules(spec, 2, 1)
    assert last["output_layer.weight"].hf == (bridge.HF_LM_HEAD,)
    tied_last = bridge.stage_rules(_spec(), 2, 1)
    assert tied_last["output_layer.weight"].hf == (bridge.HF_EMBED,)
    assert bridge.is_duplicate("output_layer.weight", _spec(), 2, 1)


@pytest.mark.parametrize(
    ("key", "module"),
    [
        ("model.layers.0.mlp.up_proj.weight", "model.language_model.layers.0.mlp.up_proj.weight"),
        ("model.embed_tokens.weight", "model.language_model.embed_tokens.weight"),
        ("visual.blocks.0.attn.qkv.weight", "model.visual.blocks.0.attn.qkv.weight"),
        ("model.language_model.norm.weight", "model.language_model.norm.weight"),
        ("model.visual.merger.norm.weight", "model.visual.merger.norm.weight"),
        ("lm_head.weight", "lm_head.weight"),
    ],
)
def test_checkpoint_keys_map_to_module_names(key, module):
    assert bridge.module_name(key) == module
