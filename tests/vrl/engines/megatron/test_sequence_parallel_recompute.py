"""engine.sequence_parallel (with TP) and engine.recompute: log-probs and one update equal the plain engine's
within 1e-5 (multi-rank layouts in the integration tier; recomputation also in one process)."""

from __future__ import annotations

import pytest
from engine_ops import build_engine, grpo_update
from launch import run_ranks
from mm_batch import multimodal_trajectories

from vrl.engines.config import EngineConfig
from vrl.models.loading import load_processor

TOL = 1e-5  # the bound on log-probs and the update


@pytest.mark.parametrize(
    ("name", "recompute"),
    [("tiny-qwen2.5-vl", "selective"), ("tiny-qwen3-vl", "selective"), ("tiny-qwen2.5-vl", "full")],
)
def test_recompute_equals_the_plain_engine(name, recompute, one_process, mg_models):
    path = mg_models[name]
    trajs = multimodal_trajectories(load_processor(path))
    plain = build_engine({"grad_clip": 0.0}, one_process, path)
    other = build_engine({"grad_clip": 0.0, "recompute": recompute}, one_process, path)
    a, b = plain.compute_logprobs(trajs, with_entropy=True), other.compute_logprobs(trajs, with_entropy=True)
    assert max(float((x - y).abs().max()) for x, y in zip(a.logp + a.entropy, b.logp + b.entropy)) < TOL
    ma, mb = grpo_update(plain, trajs, one_process), grpo_update(other, trajs, one_process)
    assert mb["grad_norm"] == pytest.approx(ma["grad_norm"], rel=TOL)  # unclipped: the gradients agree
    wa, wb = dict(plain.rollout_weights()), dict(other.rollout_weights())
    assert max(float((wa[n] - wb[n]).abs().max()) for n in wa) < TOL


def test_config_refuses_what_cannot_run():
    with pytest.raises(ValueError, match="tensor_parallel_size >= 2"):
        EngineConfig(name="megatron", sequence_parallel=True).validate()
    with pytest.raises(ValueError, match="megatron features"):
        EngineConfig(name="fsdp", recompute="full").validate()
    with pytest.raises(ValueError, match="set one of them"):
        EngineConfig(name="megatron", gradient_checkpointing=True, recompute="selective").validate()
    EngineConfig(name="megatron", tensor_parallel_size=2, sequence_parallel=True, recompute="full").validate()


def test_deepstack_refuses_full_recompute_only(one_process, mg_models):
    with pytest.raises(ValueError, match="recompute=selective is"):
        build_engine({"recompute": "full"}, one_process, mg_models["tiny-qwen3-vl"])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "world", "kw"),
    [
        ("tiny-qwen2.5-vl", 2, {"tp": 2}),
        ("tiny-qwen3-vl", 2, {"tp": 2, "variant_extra": {"recompute": "selective"}}),
        ("tiny-qwen2.5-vl", 4, {"tp": 2, "pp": 2, "num_microbatches": 2, "micro_batch_size": 1}),
    ],
    ids=["qwen2.5-tp2", "qwen3-tp2-selective", "qwen2.5-tp2pp2"],
)
def test_sequence_parallel_equals_the_plain_engine(name, world, kw, mg_models, tmp_path):
    """With TP = 2 the log-probs are bit-equal (a reduce-scatter and an all-reduce of two ranks add the
    same two numbers); gradients differ by summation order only."""
    kw = dict(kw)
    variant = {"sequence_parallel": True, **kw.pop("variant_extra", {})}
    results = run_ranks(
        "variant", world, tmp_path, model=str(mg_models[name]), variant=variant, grad_clip=0.0, **kw
    )
    for r in results:
        assert r["variant"]["sequence_parallel_norms"] > 0 and r["plain"]["sequence_parallel_norms"] == 0
        assert r["max_logprob_diff"] < TOL, r["max_logprob_diff"]
        assert r["max_weight_diff"] < TOL and r["plain"]["moved"] > 5 * r["max_weight_diff"]
        assert r["grad_tensors"] > 0 and r["max_grad_diff"] <= TOL * max(1.0, r["max_grad"])
        assert r["variant"]["metrics"]["loss"] == pytest.approx(r["plain"]["metrics"]["loss"], abs=TOL)
        assert r["buckets"]["left_alive"] == 0
    worst = max(r["max_grad_diff"] for r in results)
    print(
        f"sequence parallel {name} {kw}: log-probs {max(r['max_logprob_diff'] for r in results):.1e}, "
        f"gradients {worst:.1e}, weights {max(r['max_weight_diff'] for r in results):.1e}"
    )
