"""GPU tier: the Megatron engine in bfloat16 (CUDA autocast over float32 parameters) at TP=1, one process.
Modelled on test_engine.py: log-probs and entropy close to the HF float32 model's on the multimodal batch
(bf16 tolerance; the README's ~1e-2), one GRPO update with a finite loss moves the weights, and the
planner's bytes equal what the engine allocated on the GPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from engine_ops import grpo_update
from mm_batch import multimodal_trajectories

from vrl.engines.config import EngineConfig
from vrl.models.loading import load_processor

pytestmark = pytest.mark.gpu

BF16_LOGP_TOLERANCE = 0.1


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_megatron_bf16_tp1_on_cuda(one_process, mg_models, hf_reference, name):
    from vrl.engines.megatron.engine import MegatronEngine

    assert one_process.device.type == "cuda"
    path = mg_models[name]
    cfg = EngineConfig(name="megatron", lr=1e-5, param_dtype="bfloat16", micro_batch_size=2)
    engine = MegatronEngine(cfg, path, one_process, total_steps=2)
    trajs = multimodal_trajectories(load_processor(path))
    _, ref_logp, ref_ent, lens = hf_reference[name]
    got = engine.compute_logprobs(trajs, with_entropy=True)
    for i, n in enumerate(lens):
        assert (got.logp[i] - ref_logp[i, :n]).abs().max() < BF16_LOGP_TOLERANCE
        assert (got.entropy[i] - ref_ent[i, :n]).abs().max() < BF16_LOGP_TOLERANCE
    before = {k: v.clone() for k, v in engine.rollout_weights()}
    sys.path.insert(0, str(Path(__file__).parents[2] / "planner"))
    from allocated import measure_step

    from vrl.planner.layout import Layout
    from vrl.planner.model_memory import megatron_state
    from vrl.planner.shapes import read_shapes

    metrics: dict = {}
    counts = measure_step(engine, lambda: metrics.update(grpo_update(engine, trajs, one_process)))
    assert torch.isfinite(torch.tensor(metrics["loss"]))
    assert any(not torch.equal(before[k], v) for k, v in engine.rollout_weights())
    want = megatron_state(read_shapes(path), Layout("megatron", 1, 2, "bfloat16"))
    assert (counts["params"], counts["grads"], counts["optimizer"]) == (
        want.params,
        want.grads,
        want.optimizer,
    )
