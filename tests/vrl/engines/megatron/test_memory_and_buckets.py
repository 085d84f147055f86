"""The megatron engine's memory accounting (counted from its tensors) and its bucketed weight stream, in one
process (TP = PP = 1). Multi-rank layouts: test_scale_layouts.py."""

from __future__ import annotations

import pytest
import torch
from bucket_checks import check_buckets
from engine_ops import build_engine, grpo_update
from mm_batch import multimodal_trajectories

from vrl.engines.memory import COMPONENTS
from vrl.models.loading import load_processor


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def test_memory_breakdown_counts_the_engine_tensors(one_process, mg_models):
    path = mg_models["tiny-qwen2.5-vl"]
    engine = build_engine({}, one_process, path)
    params = list(engine.policy.parameters())
    fresh = engine.memory_breakdown()
    assert tuple(fresh) == COMPONENTS
    assert fresh == {"params": _bytes(params), "grads": _bytes(params), "optimizer": 0, "main_weights": 0}

    applied: list[int] = []  # the gradients at the optimizer step, when backward has allocated them all
    original = engine.optimizer.step

    def step(*args, **kwargs):
        applied.append(_bytes(p.grad for p in params if p.grad is not None))
        return original(*args, **kwargs)

    engine.optimizer.step = step
    grpo_update(engine, multimodal_trajectories(load_processor(path)), one_process)
    after = engine.memory_breakdown()
    assert after["grads"] == applied[0] == _bytes(params)
    states = [v for s in engine.optimizer.state.values() for v in s.values()]
    assert after["optimizer"] == _bytes(states) == 2 * _bytes(params) + 4 * len(params)  # moments + fp32 step
    assert after["params"] == fresh["params"] and after["main_weights"] == 0


def test_memory_breakdown_counts_the_reference(one_process, mg_models):
    from vrl.engines.config import EngineConfig
    from vrl.engines.megatron.engine import MegatronEngine

    cfg = EngineConfig(name="megatron")
    engine = MegatronEngine(
        cfg, mg_models["tiny-qwen2.5-vl"], one_process, total_steps=1, with_reference=True
    )
    policy = _bytes(engine.policy.parameters())
    assert engine.memory_breakdown()["params"] == 2 * policy
    assert engine.memory_breakdown()["grads"] == policy  # the frozen reference has none


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_buckets_are_the_rollout_weights(name, one_process, mg_models):
    engine = build_engine({}, one_process, mg_models[name])
    bucket = 256 * 1024
    got = check_buckets(engine, bucket)
    assert got["num_buckets"] > 5  # the limit really splits the model
    assert got["left_alive"] == 0  # nothing of a dropped bucket stays referenced
    # extra memory at any moment: one bucket + one tensor's conversion (a TP = 1 "gather" copies nothing)
    assert got["peak_extra"] <= max(bucket, got["largest_tensor"]) + got["largest_tensor"], got


def test_one_bucket_per_tensor_is_rollout_weights(one_process, mg_models):
    engine = build_engine({}, one_process, mg_models["tiny-qwen2.5-vl"])
    singles = [b for b in engine.rollout_weight_buckets(1)]
    whole = list(engine.rollout_weight_buckets(1 << 40))
    assert len(whole) == 1 and len(singles) > 50
    assert [n for b in singles for n, _ in b] == [n for n, _ in whole[0]]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip((x for b in singles for x in b), whole[0]))
