"""Engine construction and one GRPO update, shared by the in-process tests and the multi-process workers."""

from __future__ import annotations

from pathlib import Path

from vrl.algorithms.config import AlgorithmConfig
from vrl.engines.config import EngineConfig
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn


def build_engine(kw: dict, dist_ctx, path: Path):
    cfg = EngineConfig(
        name=kw.get("engine", "megatron"),
        lr=kw.get("lr", 1e-5),
        weight_decay=kw.get("weight_decay", 0.0),
        grad_clip=kw.get("grad_clip", 1.0),
        micro_batch_size=kw.get("micro_batch_size", 2),
        tensor_parallel_size=kw.get("tp", 1),
        pipeline_parallel_size=kw.get("pp", 1),
        num_microbatches=kw.get("num_microbatches", 1),
        gradient_checkpointing=kw.get("gradient_checkpointing", False),
        distributed_optimizer=kw.get("distributed_optimizer", False),
        param_dtype=kw.get("param_dtype", "float32"),
        sequence_parallel=kw.get("sequence_parallel", False),
        recompute=kw.get("recompute", "none"),
    )
    if cfg.name == "fsdp":
        from vrl.engines.fsdp import FSDPEngine as cls
    else:
        from vrl.engines.megatron.engine import MegatronEngine as cls
    return cls(cfg, path, dist_ctx, total_steps=10, temperature=kw.get("temperature", 1.0))


def grpo_update(engine, trajs, dist_ctx) -> dict:
    """old log-probs → one GRPO optimizer step; returns its metrics (the trainer's loss function)."""
    for t, old in zip(trajs, engine.compute_logprobs(trajs).logp):
        t.old_logp = old
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, dist_ctx)
    return engine.train_step(trajs, loss_fn, need_entropy=False)
