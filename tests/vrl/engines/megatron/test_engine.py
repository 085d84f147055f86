"""The megatron engine in one process (TP = PP = 1): parity with the HF model and the FSDP engine, export,
checkpoints, reference model. Multi-rank layouts are in test_parallel.py (integration)."""

from __future__ import annotations

import pytest
import torch
from dist_worker import suite
from engine_ops import build_engine, grpo_update
from mm_batch import multimodal_trajectories
from parity import check_export_bit_exact, check_logprobs, check_update, loss_total

from vrl import device
from vrl.models.loading import load_hf_model, load_processor

NAMES = ["tiny-qwen2.5-vl", "tiny-qwen3-vl"]


@pytest.fixture(scope="module")
def fsdp_results(one_process, mg_models, tmp_path_factory):
    out = {}
    for name in NAMES:
        kw = {"engine": "fsdp", "model": str(mg_models[name]), "export": False, "save_load": False}
        out[name] = suite(kw, one_process, mg_models[name], tmp_path_factory.mktemp("fsdp"))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_single_rank_matches_hf_and_fsdp(name, one_process, mg_models, hf_reference, fsdp_results, tmp_path):
    kw = {"model": str(mg_models[name])}
    result = suite(kw, one_process, mg_models[name], tmp_path)
    check_logprobs(result, hf_reference[name])
    check_update(result, fsdp_results[name], loss_total([result]))
    assert check_export_bit_exact(tmp_path / "export", mg_models[name]) > 50
    assert result["reloaded_equal"] and result["reloaded_lr"] == pytest.approx(1e-5)
    assert result["reloaded_optimizer_steps"] == 1


def test_export_loads_in_transformers(one_process, mg_models, tmp_path):
    path = mg_models["tiny-qwen2.5-vl"]
    engine = build_engine({}, one_process, path)
    engine.export_hf(tmp_path / "hf")
    original, exported = load_hf_model(path), load_hf_model(tmp_path / "hf")
    assert (tmp_path / "hf" / "tokenizer.json").exists()
    theirs = exported.state_dict()
    assert all(torch.equal(t, theirs[n]) for n, t in original.state_dict().items())


def test_rollout_weights_are_the_hf_state_dict(one_process, mg_models):
    path = mg_models["tiny-qwen3-vl"]
    engine = build_engine({}, one_process, path)
    streamed = dict(engine.rollout_weights())
    hf = load_hf_model(path).state_dict()
    assert set(hf) == set(streamed)  # a tied lm_head too (vLLM re-packs its output layer only then)
    assert all(torch.equal(streamed[n], hf[n]) for n in streamed)


def test_reference_model_stays_frozen(one_process, mg_models):
    from vrl.engines.config import EngineConfig
    from vrl.engines.megatron.engine import MegatronEngine

    path = mg_models["tiny-qwen2.5-vl"]
    engine = MegatronEngine(
        EngineConfig(name="megatron", lr=1e-3), path, one_process, total_steps=2, with_reference=True
    )
    trajs = multimodal_trajectories(load_processor(path))
    before = engine.compute_logprobs(trajs, reference=True).logp
    grpo_update(engine, trajs, one_process)
    after_ref = engine.compute_logprobs(trajs, reference=True).logp
    after_policy = engine.compute_logprobs(trajs).logp
    assert all(torch.equal(a, b) for a, b in zip(before, after_ref))
    assert max(float((a - b).abs().max()) for a, b in zip(before, after_policy)) > 1e-3


def test_reference_without_model_raises(one_process, mg_models):
    engine = build_engine({}, one_process, mg_models["tiny-qwen2.5-vl"])
    with pytest.raises(ValueError, match="without a reference model"):
        engine.compute_logprobs([], reference=True)


def test_deepstack_refuses_gradient_checkpointing(one_process, mg_models):
    from vrl.engines.config import EngineConfig
    from vrl.engines.megatron.engine import MegatronEngine

    cfg = EngineConfig(name="megatron", gradient_checkpointing=True)
    with pytest.raises(ValueError, match="DeepStack"):
        MegatronEngine(cfg, mg_models["tiny-qwen3-vl"], one_process, total_steps=1)


def test_first_format_at_another_layout_is_explained(one_process, mg_models, tmp_path):
    """A checkpoint of the first format (per-rank torch files) loads only at its own layout."""
    engine = build_engine({}, one_process, mg_models["tiny-qwen2.5-vl"])
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}}, ckpt / "mp_rank_00_000.pt")
    (ckpt / "layout.json").write_text('{"tensor_parallel_size": 2, "pipeline_parallel_size": 1}')
    with pytest.raises(ValueError, match="first megatron format"):
        engine.load(ckpt)


def test_unused_vision_tower_is_skipped_by_the_optimizer(one_process, mg_models):
    """A text-only update leaves the vision tower untouched (no gradient → AdamW skips it, as in one
    process with the HF model), while the decoder moves."""
    path = mg_models["tiny-qwen2.5-vl"]
    engine = build_engine({}, one_process, path)
    trajs = multimodal_trajectories(load_processor(path))
    grpo_update(engine, trajs, one_process)  # every parameter has Adam state now
    before = {n: t.clone() for n, t in engine.rollout_weights()}
    text_only = [t for t in trajs if not t.prompt.vision]
    assert len(text_only) == 1
    grpo_update(engine, text_only, one_process)
    after = dict(engine.rollout_weights())
    vision = [n for n in before if n.startswith("model.visual.")]
    assert vision and all(torch.equal(before[n], after[n]) for n in vision)
    assert not torch.equal(
        before["model.language_model.norm.weight"], after["model.language_model.norm.weight"]
    )


@pytest.mark.skipif(device.has_gpu(), reason="the CPU refusal")
def test_bfloat16_is_refused_on_cpu(one_process, mg_models):
    from vrl.engines.config import EngineConfig
    from vrl.engines.megatron.engine import MegatronEngine

    cfg = EngineConfig(name="megatron", param_dtype="bfloat16")
    with pytest.raises(ValueError, match="needs a GPU"):
        MegatronEngine(cfg, mg_models["tiny-qwen2.5-vl"], one_process, total_steps=1)


def test_gradient_checkpointing_gives_the_same_update(one_process, mg_models):
    path = mg_models["tiny-qwen2.5-vl"]
    trajs = multimodal_trajectories(load_processor(path))
    plain = build_engine({}, one_process, path)
    recompute = build_engine({"gradient_checkpointing": True}, one_process, path)
    a, b = grpo_update(plain, trajs, one_process), grpo_update(recompute, trajs, one_process)
    assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-6)
    wa, wb = dict(plain.rollout_weights()), dict(recompute.rollout_weights())
    assert max(float((wa[n] - wb[n]).abs().max()) for n in wa) < 1e-7


@pytest.mark.parametrize("name", NAMES)
def test_uint8_video_patches_give_the_same_logprobs(name, one_process, mg_models):
    """The trainer hands video patches over as uint8; the Megatron vision stage normalises them itself."""
    from mm_batch import multimodal_prompts

    from vrl.batch import Trajectory

    path = mg_models[name]
    engine = build_engine({}, one_process, path)
    logps = []
    for uint8 in (False, True):
        prompts = multimodal_prompts(load_processor(path, uint8_patches=uint8), for_vllm=True)
        videos = [p.vision["pixel_values_videos"] for p in prompts if "pixel_values_videos" in p.vision]
        assert len(videos) == 2 and all(v.dtype == (torch.uint8 if uint8 else torch.float32) for v in videos)
        trajs = [Trajectory(prompt=p, response_ids=torch.arange(10, 16), response_text="") for p in prompts]
        logps.append(engine.compute_logprobs(trajs).logp)
    assert all(torch.equal(a, b) for a, b in zip(*logps))
