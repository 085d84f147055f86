"""Registries that turn config names into training and rollout engines (imported lazily by name)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from vrl.distributed import DistContext
from vrl.engines.base import TrainingEngine
from vrl.rollout.base import RolloutEngine

ENGINES: dict[str, str] = {
    "fsdp": "vrl.engines.fsdp:FSDPEngine",
    "megatron": "vrl.engines.megatron.engine:MegatronEngine",
}
ROLLOUTS: dict[str, str] = {
    "hf": "vrl.rollout.hf:HFRollout",
    "vllm": "vrl.rollout.vllm_engine:VLLMRollout",
}


def _load(table: dict[str, str], name: str, what: str) -> Any:
    if name not in table:
        raise ValueError(f"unknown {what} '{name}'. Known: {', '.join(sorted(table))}")
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def build_engine(cfg: Any, model_path: Path, dist_ctx: DistContext) -> TrainingEngine:
    """The training engine of ``cfg.engine.name`` for the train-stage config ``cfg``."""
    cls = _load(ENGINES, cfg.engine.name, "training engine")
    return cls(
        cfg.engine,
        model_path,
        dist_ctx,
        total_steps=cfg.warmup.sft_steps
        + cfg.trainer.total_steps * num_updates(cfg) * cfg.trainer.ppo_epochs,
        sft_steps=cfg.warmup.sft_steps,
        sft_lr=cfg.warmup.lr,
        temperature=cfg.rollout.temperature or 1.0,
        with_reference=cfg.algorithm.uses_reference,
    )


def build_rollout(cfg: Any, model_path: Path, dist_ctx: DistContext, run_dir: Path) -> RolloutEngine:
    cls = _load(ROLLOUTS, cfg.rollout.name, "rollout engine")
    if cfg.rollout.name == "hf":
        return cls(model_path, dist_ctx.device, batch_size=cfg.rollout.batch_size)
    return cls(model_path, cfg.rollout, dist_ctx, run_dir=run_dir, seed=cfg.trainer.seed)


def num_updates(cfg: Any) -> int:
    """Optimizer steps per training step (per PPO epoch)."""
    step_trajs = cfg.trainer.rollout_batch_size * cfg.rollout.n
    gbs = cfg.trainer.global_batch_size or step_trajs
    return max(1, step_trajs // gbs)


def needs_old_logprobs(cfg: Any) -> bool:
    """Whether a step needs its own no-grad pass for the behaviour policy's log-probs.

    With a single optimizer step per batch (one mini-batch, one PPO epoch) the parameters that compute
    the update's log-probs are the ones the old log-probs would come from, so the loss uses the update's
    own detached log-probs (ratio exactly 1 in exact arithmetic; TRL and verl do the same on-policy).
    KL as a reward penalty needs them before the update, so it keeps the pass.
    """
    kl_reward = cfg.algorithm.kl_as == "reward" and cfg.algorithm.uses_reference
    return num_updates(cfg) > 1 or cfg.trainer.ppo_epochs > 1 or kl_reward
