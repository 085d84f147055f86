"""GPU tier: the FSDP engine in bfloat16 on one CUDA device with nccl (a world of one: FSDP2 still shards,
casts to bf16 and reduce-scatters through nccl). Modelled on test_fsdp.py: log-probs close to the HF
float32 model's (bf16 tolerance), one update moves the weights, and the planner's parameter, gradient and
optimizer bytes equal what the engine allocated on the GPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import collate
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.models.loading import load_hf_model
from vrl.models.policy import ResponseLogProbs
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

pytestmark = pytest.mark.gpu

BF16_LOGP_TOLERANCE = 0.1  # bf16 compute vs the fp32 model, per token log-prob (nats)


def test_fsdp2_bf16_step_with_nccl(tiny_qwen25):
    import torch.distributed as dist

    from vrl.engines.fsdp import FSDPEngine

    sys.path.insert(0, str(Path(__file__).parents[1] / "planner"))
    from allocated import measure_step

    from vrl.planner.layout import Layout
    from vrl.planner.model_memory import fsdp_state
    from vrl.planner.shapes import read_shapes

    ctx = init_distributed()
    assert ctx.device.type == "cuda" and dist.get_backend() == "nccl"
    engine = FSDPEngine(
        EngineConfig(lr=1e-3, param_dtype="bfloat16", micro_batch_size=4), tiny_qwen25, ctx, total_steps=2
    )
    trajs = make_trajectories(tiny_qwen25)
    logp = engine.compute_logprobs(trajs).logp
    reference = ResponseLogProbs(load_hf_model(tiny_qwen25, device=ctx.device).eval())
    with torch.no_grad():
        want = reference(collate(trajs, engine.pad_id).to(ctx.device))[0]
    for i, got in enumerate(logp):
        assert (got - want[i, : got.numel()].float().cpu()).abs().max() < BF16_LOGP_TOLERANCE
    for t, lp in zip(trajs, logp):
        t.old_logp = lp
    before = {k: v.clone() for k, v in engine.rollout_weights()}
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, ctx)
    metrics: dict = {}
    counts = measure_step(
        engine, lambda: metrics.update(engine.train_step(trajs, loss_fn, need_entropy=True))
    )
    assert torch.isfinite(torch.tensor(metrics["loss"])) and metrics["grad_norm"] > 0
    after = dict(engine.rollout_weights())
    assert any(not torch.equal(before[k], after[k]) for k in before)
    want_bytes = fsdp_state(read_shapes(tiny_qwen25), Layout("fsdp", 1, 4, "bfloat16"))
    assert (counts["params"], counts["grads"], counts["optimizer"]) == (
        want_bytes.params,
        want_bytes.grads,
        want_bytes.optimizer,
    )
