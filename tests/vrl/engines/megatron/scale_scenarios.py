"""Multi-rank scenarios of the scale features (run by ``dist_worker.py``; results are plain data)."""

from __future__ import annotations

from pathlib import Path

from bucket_checks import check_buckets
from engine_ops import build_engine, grpo_update
from mm_batch import multimodal_trajectories

from vrl.models.loading import load_processor


def _shard(trajs, dist_ctx):
    return trajs[dist_ctx.dp_rank :: dist_ctx.dp_size]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def _capture_plain_grads(engine, store: dict) -> None:
    """Record the gradients the plain optimizer applies (after every reduction and clipping)."""
    original = engine.optimizer.step

    def step(*args, **kwargs):
        store.update({n: p.grad.clone() for n, p in engine.policy.named_parameters() if p.grad is not None})
        return original(*args, **kwargs)

    engine.optimizer.step = step


def _capture_zero_grads(engine, store: dict) -> None:
    """Record, per parameter, this rank's slice of the reduced fp32 gradient the distributed optimizer
    applies, as (start, end, values) of the flattened parameter (unclipped: use grad_clip=0)."""
    zero = engine.zero
    original = zero.megatron.step

    def step(*args, **kwargs):
        for n, p in engine.policy.named_parameters():
            local = zero._local(p)
            if local is not None:
                start, end, _ = local
                store[n] = (start, end, p.main_grad.reshape(-1)[start:end].clone())
        return original(*args, **kwargs)

    zero.megatron.step = step


def zero(kw: dict, dist_ctx, path: Path, out_dir: Path) -> dict:
    """One update with the plain optimizer and one with the distributed optimizer, same start: updated
    weights, metrics and memory of both; buckets of the distributed one."""
    trajs = _shard(multimodal_trajectories(load_processor(path)), dist_ctx)
    result: dict = {"dp_rank": dist_ctx.dp_rank, "dp_size": dist_ctx.dp_size}
    engines = {}
    for name, extra in (("plain", {}), ("zero", {"distributed_optimizer": True})):
        engine = build_engine({**kw, **extra}, dist_ctx, path)
        initial = {n: t.clone() for n, t in engine.rollout_weights()}
        grads: dict = {}
        (_capture_zero_grads if extra else _capture_plain_grads)(engine, grads)
        result[name + "_grads"] = grads
        metrics = grpo_update(engine, trajs, dist_ctx)
        weights = {n: t.clone() for n, t in engine.rollout_weights()}
        result[name] = {
            "metrics": metrics,
            "memory": engine.memory_breakdown(),
            "num_params": sum(p.numel() for p in engine.policy.parameters()),
            "num_tensors": len(list(engine.policy.parameters())),
            "moved": _max_diff(weights, initial),
        }
        result[name + "_weights"] = weights
        engines[name] = engine
        result["mp_coord"] = (engine.groups.tp_rank, engine.groups.pp_rank)
    result["max_weight_diff"] = _max_diff(result.pop("plain_weights"), result.pop("zero_weights"))
    plain_grads, zero_grads = result.pop("plain_grads"), result.pop("zero_grads")
    if kw.get("grad_clip", 1.0) == 0:  # both unclipped: the gradients themselves are comparable
        worst, scale = 0.0, 0.0
        for n, (start, end, values) in zero_grads.items():
            ref = plain_grads[n].reshape(-1)[start:end]
            worst = max(worst, float((values - ref).abs().max()))
            scale = max(scale, float(ref.abs().max()))
        result["max_grad_diff"], result["max_grad"] = worst, scale
        result["grad_slices"] = len(zero_grads)
    result["buckets"] = check_buckets(engines["zero"], 256 * 1024)
    return result
