"""One rank of a multi-process engine test (started by ``launch.run_ranks`` the way torchrun would).

``python dist_worker.py <scenario> <out_dir> <json kwargs>`` with RANK/WORLD_SIZE/MASTER_* in the
environment; each rank writes ``<out_dir>/rank<r>.pt``. Scenarios:

- ``suite``: log-probs + entropy of the multimodal batch; HF export of the freshly loaded weights; one GRPO
  update (loss, metrics, updated HF weights, log-probs after); save, load into a new engine, compare.
- ``variant``, ``save_then_resume``, ``resume``: the scale features (``scale_scenarios.py``).
- ``vllm``: one update, then the streamed weights into a vLLM rollout on every rank; vLLM's log-probs of its
  own greedy responses vs the engine's (before and after the update).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1]))  # helpers shared with the FSDP tests

import torch.distributed as dist
from engine_ops import build_engine, grpo_update
from mm_batch import multimodal_trajectories

from vrl.distributed import init_distributed, shutdown
from vrl.models.loading import load_processor


def suite(kw: dict, dist_ctx, path: Path, out_dir: Path) -> dict:
    engine = build_engine(kw, dist_ctx, path)
    trajs = multimodal_trajectories(load_processor(path))
    if kw.get("shard"):
        trajs = trajs[dist_ctx.dp_rank :: dist_ctx.dp_size]
    result: dict = {"dp_rank": dist_ctx.dp_rank, "dp_size": dist_ctx.dp_size}
    if kw.get("engine") == "fsdp":
        result["initial"] = {n: t.clone() for n, t in engine.rollout_weights()}
    lp = engine.compute_logprobs(trajs, with_entropy=True)
    result.update(logp=lp.logp, entropy=lp.entropy)
    if kw.get("export", True):
        engine.export_hf(out_dir / "export")
    result["metrics"] = grpo_update(engine, trajs, dist_ctx)
    result["weights"] = {n: t.clone() for n, t in engine.rollout_weights()}
    result["after"] = engine.compute_logprobs(trajs).logp
    if kw.get("save_load", True):
        engine.save(out_dir / "ckpt")
        fresh = build_engine(kw, dist_ctx, path)
        fresh.load(out_dir / "ckpt")
        result["reloaded_equal"] = all(
            torch.equal(result["weights"][n], t) for n, t in fresh.rollout_weights()
        )
        result["reloaded_lr"] = fresh.lr
        result["reloaded_optimizer_steps"] = fresh.scheduler.last_epoch
    return result


def main() -> None:
    scenario, out_dir, kw = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    path = Path(kw["model"])
    dist_ctx = init_distributed(model_parallel=(kw.get("tp", 1), kw.get("pp", 1)))
    try:
        if scenario == "suite":
            result = suite(kw, dist_ctx, path, out_dir)
        elif scenario in ("variant", "save_then_resume", "resume"):
            import scale_scenarios

            result = getattr(scale_scenarios, scenario)(kw, dist_ctx, path, out_dir)
        elif scenario == "vllm":
            from vllm_stream import stream_and_compare

            result = stream_and_compare(kw, dist_ctx, path, out_dir)
        else:
            raise ValueError(f"unknown scenario '{scenario}'")
        torch.save(result, out_dir / f"rank{dist_ctx.rank}.pt")
        dist.barrier()  # no rank tears its gloo pairs down while a peer still talks to it
    finally:
        shutdown()


if __name__ == "__main__":
    main()
