"""Layout validation: every reason a TP × PP layout does not fit a checkpoint, before any process starts."""

from __future__ import annotations

import dataclasses

import pytest

from vrl.engines.megatron.layout import check_layout, layout_errors, spec_if_readable
from vrl.engines.megatron.spec import DecoderSpec


def _spec(**overrides) -> DecoderSpec:
    base = DecoderSpec(
        family="qwen2_5_vl",
        num_layers=4,
        hidden_size=128,
        ffn_hidden_size=384,
        num_heads=4,
        num_kv_heads=2,
        head_dim=32,
        vocab_size=2112,
        rms_eps=1e-6,
        rope_theta=1e6,
        mrope_section=(4, 6, 6),
        mrope_interleaved=False,
        qkv_bias=True,
        qk_norm=False,
        tied_embeddings=True,
        num_deepstack=0,
        attention_dropout=0.0,
        image_token_id=1,
        video_token_id=2,
    )
    return dataclasses.replace(base, **overrides)


@pytest.mark.parametrize(
    ("tp", "pp", "world"), [(1, 1, 1), (2, 1, 2), (1, 2, 2), (2, 2, 4), (2, 1, 4), (1, 4, 8)]
)
def test_valid_layouts_have_no_errors(tp, pp, world):
    assert layout_errors(_spec(), tp, pp, world) == []
    assert check_layout(_spec(), tp, pp, world).dp == world // (tp * pp)


@pytest.mark.parametrize(
    ("tp", "pp", "world", "needle"),
    [
        (4, 1, 4, "does not divide the 2 key/value heads"),
        (3, 1, 3, "does not divide the 4 attention heads"),
        (2, 2, 6, "world size 6 is not a multiple"),
        (1, 3, 3, "does not divide the 4 decoder layers"),
        (2, 1, 3, "world size 3 is not a multiple"),
    ],
)
def test_invalid_layouts_name_the_reason(tp, pp, world, needle):
    with pytest.raises(ValueError, match=needle):
        check_layout(_spec(), tp, pp, world)


def test_every_reason_is_reported_at_once():
    errors = layout_errors(_spec(), 3, 3, 8)
    assert len(errors) >= 4  # world, heads, KV heads, layers (and widths)


def test_deepstack_layers_must_sit_on_stage_zero():
    spec = _spec(family="qwen3_vl", num_deepstack=3, num_layers=4)
    assert layout_errors(spec, 1, 1, 1) == []
    with pytest.raises(ValueError, match="DeepStack"):
        check_layout(spec, 1, 2, 2)  # stage 0 holds 2 layers, DeepStack needs 3


def test_vocab_and_mlp_width_must_split_evenly():
    errors = layout_errors(_spec(vocab_size=2111, ffn_hidden_size=383, num_heads=2), 2, 1, 2)
    assert any("vocabulary" in e for e in errors) and any("MLP width" in e for e in errors)


def test_spec_reads_both_families(mg_models):
    qwen25 = spec_if_readable(mg_models["tiny-qwen2.5-vl"])
    qwen3 = spec_if_readable(mg_models["tiny-qwen3-vl"])
    assert (qwen25.qkv_bias, qwen25.qk_norm, qwen25.mrope_interleaved, qwen25.num_deepstack) == (
        True,
        False,
        False,
        0,
    )
    assert (qwen3.qkv_bias, qwen3.qk_norm, qwen3.mrope_interleaved, qwen3.num_deepstack) == (
        False,
        True,
        True,
        1,
    )
    assert qwen25.num_kv_heads == 2 and qwen25.tied_embeddings


def test_unbuilt_tiny_model_is_not_built_by_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("VRL_HOME", str(tmp_path))
    assert spec_if_readable("tiny-qwen2.5-vl") is None
    assert not (tmp_path / "models").exists()


def test_train_config_rejects_layout_before_launch(mg_models):
    from vrl.config import ConfigError, parse
    from vrl.trainer.config import Config

    argv = [
        "engine=megatron",
        "engine.tensor_parallel_size=4",
        "tasks_per_node=4",
        "trainer.rollout_batch_size=8",
    ]
    with pytest.raises((ConfigError, ValueError), match="key/value heads"):
        parse(Config, argv)
    cfg, _ = parse(Config, ["engine=megatron", "engine.tensor_parallel_size=2", "tasks_per_node=2"])
    assert cfg.engine.tensor_parallel_size == 2


def test_train_stage_checks_layout_before_process_group(mg_models, monkeypatch, tmp_path):
    """stage=train fails on a bad layout before torch.distributed is touched."""
    import torch.distributed as dist

    from vrl.launch.context import RunContext
    from vrl.trainer import stage
    from vrl.trainer.config import Config

    cfg = Config(model=str(mg_models["tiny-qwen2.5-vl"]))
    cfg.engine.name = "megatron"
    cfg.engine.tensor_parallel_size = 4
    monkeypatch.setattr(stage, "init_distributed", lambda **kw: pytest.fail("process group started"))
    with pytest.raises(ValueError, match="key/value heads"):
        stage.run(cfg, RunContext(run_dir=tmp_path, world_size=4))
    assert not dist.is_initialized() or dist.get_world_size() == 1
