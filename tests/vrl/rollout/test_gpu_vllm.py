"""GPU tier: the colocated vLLM engine on CUDA (bfloat16) with sleep/wake and weight sync. Modelled on
test_vllm_sync.py: vLLM's log-probs of its own greedy tokens equal the trainer's within a bf16 tolerance;
after updates they differ (stale weights); sleeping frees device memory and waking restores the engine;
after streaming the trainer's weights they agree again."""

from __future__ import annotations

import pytest
import torch
from vrl_fixtures import make_prompts, make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import Trajectory
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.rollout.base import SamplingParams
from vrl.rollout.config import RolloutConfig
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

pytestmark = pytest.mark.gpu

TOLERANCE = 0.05  # mean |Δ log-prob| per token, bf16 vLLM kernels vs the bf16 trainer


def vllm_vs_engine(engine, rollout, prompts) -> float:
    out = rollout.generate(prompts, SamplingParams(n=1, temperature=0.0, max_tokens=6), seed=0)
    trajs = [
        Trajectory(prompt=p, response_ids=torch.tensor(g[0].token_ids), response_text=g[0].text)
        for p, g in zip(prompts, out)
    ]
    ours = engine.compute_logprobs(trajs).logp
    theirs = [torch.tensor(g[0].logprobs) for g in out]
    return float(torch.cat([(a - b).abs() for a, b in zip(ours, theirs)]).mean())


def test_vllm_cuda_sleep_wake_and_weight_sync(tiny_qwen25, tmp_path):
    from vrl.engines.fsdp import FSDPEngine
    from vrl.rollout.vllm_engine import VLLMRollout

    ctx = init_distributed()
    engine = FSDPEngine(EngineConfig(lr=5e-3, param_dtype="bfloat16"), tiny_qwen25, ctx, total_steps=4)
    cfg = RolloutConfig(name="vllm", gpu_memory_utilization=0.3, enable_sleep_mode=True, max_model_len=4096)
    rollout = VLLMRollout(tiny_qwen25, cfg, ctx, run_dir=tmp_path, seed=0)
    try:
        prompts = make_prompts(tiny_qwen25)
        assert vllm_vs_engine(engine, rollout, prompts) < TOLERANCE

        free_awake = torch.cuda.mem_get_info()[0]
        rollout.sleep()
        assert rollout.sleeping and torch.cuda.mem_get_info()[0] > free_awake + 2**30  # its share came back

        trajs = make_trajectories(tiny_qwen25)
        for t, lp in zip(trajs, engine.compute_logprobs(trajs).logp):
            t.old_logp = lp
        for _ in range(3):
            engine.train_step(
                trajs, make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, ctx), need_entropy=False
            )
        rollout.wake()
        assert not rollout.sleeping
        assert vllm_vs_engine(engine, rollout, prompts) > 4 * TOLERANCE  # stale weights

        rollout.update_weights(engine.rollout_weights())
        assert vllm_vs_engine(engine, rollout, prompts) < TOLERANCE
    finally:
        rollout.close()
