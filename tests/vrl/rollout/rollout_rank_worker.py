"""One rank of a multi-process rollout test, started by ``test_rollout_multirank.py`` the way torchrun would.

``python rollout_rank_worker.py <scenario> <out_dir> <json kwargs>`` with RANK/WORLD_SIZE/MASTER_* set;
each rank writes ``<out_dir>/rank<r>.pt``. Scenarios:

- ``vllm_sync``: a training engine (fsdp, or megatron at ``tp``) and a colocated vLLM engine on every rank
  (rollout groups of ``rollout_tp`` ranks); vLLM's greedy log-probs vs the engine's before an update, after
  updates without a sync (must differ) and after the bucketed sync (must agree), and how the sync ran.
- ``groups``: the hf engine behind :class:`vrl.rollout.groups.RolloutGroups` with the given layout and
  trainer data-parallel ranks; each rank's completions and the ones it gets generating alone.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import Trajectory
from vrl.distributed import DistContext, init_distributed, shutdown
from vrl.engines.config import EngineConfig
from vrl.rollout.base import SamplingParams
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn


def _fixtures():
    """tests/vrl_fixtures.py, loaded by path: tests/ on sys.path would shadow the cache_builder package."""
    spec = importlib.util.spec_from_file_location(
        "vrl_fixtures", Path(__file__).parents[2] / "vrl_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixtures = _fixtures()
make_prompts, make_trajectories = fixtures.make_prompts, fixtures.make_trajectories


def _engine(kw: dict, dist_ctx: DistContext, path: Path):
    cfg = EngineConfig(
        name=kw["engine"],
        lr=5e-3,
        tensor_parallel_size=kw.get("tp", 1),
        micro_batch_size=2,
        param_dtype="bfloat16" if torch.cuda.is_available() else "float32",
    )
    if cfg.name == "fsdp":
        from vrl.engines.fsdp import FSDPEngine as cls
    else:
        from vrl.engines.megatron.engine import MegatronEngine as cls
    return cls(cfg, path, dist_ctx, total_steps=8)


def _gap(engine, rollout, prompts) -> tuple[float, int]:
    """Max |vLLM log-prob - engine log-prob| over vLLM's greedy tokens of this rank's prompts (the mean on
    GPUs, bf16), and the tokens compared. Collective (generate and compute_logprobs)."""
    out = rollout.generate(prompts, SamplingParams(n=1, temperature=0.0, max_tokens=6), seed=0)
    trajs = [
        Trajectory(prompt=p, response_ids=torch.tensor(g[0].token_ids), response_text=g[0].text)
        for p, g in zip(prompts, out)
    ]
    ours = engine.compute_logprobs(trajs).logp
    diffs = [(a.float() - torch.tensor(g[0].logprobs)).abs() for a, g in zip(ours, out)]
    tokens = sum(len(g[0].token_ids) for g in out)
    if not diffs:
        return 0.0, tokens
    gap = torch.cat(diffs).mean() if torch.cuda.is_available() else torch.cat(diffs).max()
    return float(gap), tokens


def vllm_sync(kw: dict, dist_ctx: DistContext, path: Path, out_dir: Path) -> dict:
    from vrl.rollout.config import RolloutConfig
    from vrl.rollout.sync import sync_weights
    from vrl.rollout.vllm_engine import VLLMRollout

    engine = _engine(kw, dist_ctx, path)
    cfg = RolloutConfig(name="vllm", kv_cache_gb=1, max_model_len=2048, tensor_parallel_size=kw["rollout_tp"])
    rollout = VLLMRollout(path, cfg, dist_ctx, run_dir=out_dir / f"run{dist_ctx.rank}", seed=0)
    prompts = make_prompts(path)[dist_ctx.dp_rank :: dist_ctx.dp_size]
    result: dict = {"sync_mode": rollout.sync_mode, "local": rollout.groups.local}
    result["before"], _ = _gap(engine, rollout, prompts)
    trajs = make_trajectories(path)[dist_ctx.dp_rank :: dist_ctx.dp_size]
    for t, lp in zip(trajs, engine.compute_logprobs(trajs).logp):
        t.old_logp = lp
    for _ in range(3):
        engine.train_step(
            trajs, make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, dist_ctx), need_entropy=False
        )
    result["stale"], _ = _gap(engine, rollout, prompts)
    stats = sync_weights(rollout, engine, bucket_mb=1)
    result.update(buckets=stats.buckets, tensors=stats.tensors, bytes=stats.bytes)
    result["after"], result["tokens"] = _gap(engine, rollout, prompts)
    rollout.close()
    return result


def groups(kw: dict, dist_ctx: DistContext, path: Path, out_dir: Path) -> dict:
    """``dp_ranks``: the trainer data-parallel rank of every rank (ranks sharing one share prompts)."""
    from vrl.rollout.groups import RolloutGroups, RolloutLayout, request_seeds
    from vrl.rollout.hf import HFRollout

    dp_ranks = kw["dp_ranks"]
    ctx = DistContext(
        rank=dist_ctx.rank,
        world_size=dist_ctx.world_size,
        local_rank=dist_ctx.local_rank,
        device=dist_ctx.device,
        mesh=None,
        dp_rank=dp_ranks[dist_ctx.rank],
        dp_size=len(set(dp_ranks)),
    )
    hf = HFRollout(path, torch.device("cpu"))
    everything = make_prompts(path)
    counts = kw["counts"]  # prompts per trainer dp rank
    start = sum(counts[: ctx.dp_rank])
    prompts = everything[start : start + counts[ctx.dp_rank]]
    params = SamplingParams(n=2, temperature=1.0, max_tokens=4)
    groups = RolloutGroups(RolloutLayout(dist_ctx.world_size, kw["rollout_tp"]), ctx)

    def seeded(ps, sp, seeds):
        """The hf engine one prompt at a time, each with its own seed (what vLLM does per request)."""
        return [hf.generate([p], sp, seed=s)[0] for p, s in zip(ps, seeds)]

    grouped = groups.generate(prompts, params, 7, seeded)
    alone = seeded(prompts, params, request_seeds(7, len(prompts)))
    as_ids = lambda out: [[c.token_ids for c in comps] for comps in out]  # noqa: E731
    return {"local": groups.local, "grouped": as_ids(grouped), "alone": as_ids(alone), "n": len(prompts)}


def main() -> None:
    scenario, out_dir, kw = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    path = Path(kw["model"])
    dist_ctx = init_distributed(model_parallel=(kw.get("tp", 1), 1))
    try:
        result = {"vllm_sync": vllm_sync, "groups": groups}[scenario](kw, dist_ctx, path, out_dir)
        torch.save(result, out_dir / f"rank{dist_ctx.rank}.pt")
        dist.barrier()  # no rank tears its gloo pairs down while a peer still talks to it
    finally:
        shutdown()


if __name__ == "__main__":
    main()
