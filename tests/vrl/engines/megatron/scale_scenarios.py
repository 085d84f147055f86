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


def variant(kw: dict, dist_ctx, path: Path, out_dir: Path) -> dict:
    """The plain engine (``kw``) and a variant (``kw`` + ``kw["variant"]``: distributed optimizer, sequence
    parallelism, recomputation) from the same start: log-probs, one update (metrics, updated weights, the
    applied gradients when unclipped), memory; the variant's bucketed weight stream."""
    trajs = _shard(multimodal_trajectories(load_processor(path)), dist_ctx)
    result: dict = {"dp_rank": dist_ctx.dp_rank, "dp_size": dist_ctx.dp_size}
    engines, weights, grads, logps = {}, {}, {}, {}
    for name, extra in (("plain", {}), ("variant", kw["variant"])):
        engine = build_engine({**kw, **extra}, dist_ctx, path)
        lp = engine.compute_logprobs(trajs, with_entropy=True)
        logps[name] = lp.logp + lp.entropy
        initial = {n: t.clone() for n, t in engine.rollout_weights()}
        grads[name] = {}
        (_capture_zero_grads if engine.zero is not None else _capture_plain_grads)(engine, grads[name])
        metrics = grpo_update(engine, trajs, dist_ctx)
        weights[name] = {n: t.clone() for n, t in engine.rollout_weights()}
        result[name] = {
            "metrics": metrics,
            "memory": engine.memory_breakdown(),
            "num_params": sum(p.numel() for p in engine.policy.parameters()),
            "num_tensors": len(list(engine.policy.parameters())),
            "moved": _max_diff(weights[name], initial),
            "sequence_parallel_norms": sum(
                bool(getattr(p, "sequence_parallel", False)) for p in engine.policy.parameters()
            ),
        }
        result["mp_coord"] = (engine.groups.tp_rank, engine.groups.pp_rank)
        engines[name] = engine
    result["max_weight_diff"] = _max_diff(weights["plain"], weights["variant"])
    result["max_logprob_diff"] = max(
        float((a - b).abs().max()) for a, b in zip(logps["plain"], logps["variant"])
    )
    if kw.get("grad_clip", 1.0) == 0:  # both unclipped: the gradients themselves are comparable
        worst, scale = 0.0, 0.0
        for n, got in grads["variant"].items():
            start, end, values = got if isinstance(got, tuple) else (0, got.numel(), got.reshape(-1))
            ref = grads["plain"][n].reshape(-1)[start:end]
            worst = max(worst, float((values - ref).abs().max()))
            scale = max(scale, float(ref.abs().max()))
        result["max_grad_diff"], result["max_grad"] = worst, scale
        result["grad_tensors"] = len(grads["variant"])
    result["buckets"] = check_buckets(engines["variant"], 256 * 1024)
    return result


def _step_after_load(kw: dict, dist_ctx, path: Path, ckpt: Path) -> dict:
    """A fresh engine at this layout loads ``ckpt`` and takes one update: what the resumed run logs."""
    trajs = _shard(multimodal_trajectories(load_processor(path)), dist_ctx)
    engine = build_engine(kw, dist_ctx, path)
    engine.load(ckpt)
    lr = engine.lr
    metrics = grpo_update(engine, trajs, dist_ctx)
    return {
        "dp_rank": dist_ctx.dp_rank,
        "dp_size": dist_ctx.dp_size,
        "lr_loaded": lr,
        "metrics": metrics,
        "weights": {n: t.clone() for n, t in engine.rollout_weights()},
    }


def save_then_resume(kw: dict, dist_ctx, path: Path, out_dir: Path) -> dict:
    """One update, save to ``kw["ckpt"]``; then resume at the same layout (the reference)."""
    trajs = _shard(multimodal_trajectories(load_processor(path)), dist_ctx)
    engine = build_engine(kw, dist_ctx, path)
    grpo_update(engine, trajs, dist_ctx)
    engine.save(Path(kw["ckpt"]))
    del engine
    return _step_after_load(kw, dist_ctx, path, Path(kw["ckpt"]))


def resume(kw: dict, dist_ctx, path: Path, out_dir: Path) -> dict:
    """Resume ``kw["ckpt"]`` (saved at another layout) at this one."""
    return _step_after_load(kw, dist_ctx, path, Path(kw["ckpt"]))
