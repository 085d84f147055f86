"""One rank of the FSDP scale-hook test: after one update, the memory breakdown and the bucketed weight
stream; ``<out>.<rank>.pt`` holds this rank's numbers."""

import sys
from pathlib import Path

import torch
from bucket_checks import check_buckets
from torch.distributed.tensor import DTensor
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.distributed import init_distributed, shutdown
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn


def local_bytes(tensors) -> int:
    return sum((t.to_local() if isinstance(t, DTensor) else t).numel() * t.element_size() for t in tensors)


def main(model: str, out: str) -> None:
    dist_ctx = init_distributed()
    eng = FSDPEngine(EngineConfig(lr=1e-3, micro_batch_size=2), Path(model), dist_ctx, total_steps=10)
    trajs = make_trajectories(Path(model))[dist_ctx.rank :: dist_ctx.world_size]
    for t, lp in zip(trajs, eng.compute_logprobs(trajs).logp):
        t.old_logp = lp
    applied: list[int] = []
    original = eng.optimizer.step

    def step(*args, **kwargs):
        applied.append(local_bytes(p.grad for p in eng.policy.parameters() if p.grad is not None))
        return original(*args, **kwargs)

    eng.optimizer.step = step
    eng.train_step(trajs, make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, dist_ctx), need_entropy=False)
    params = list(eng.policy.parameters())
    result = {
        "breakdown": eng.memory_breakdown(),
        "applied_grads": applied[0],
        "local_params": local_bytes(params),
        "full_params": sum(p.numel() * p.element_size() for p in params),
        "num_params": len(params),
        "sharded": all(isinstance(p, DTensor) for p in params),
        "buckets": check_buckets(eng, 256 * 1024),
    }
    torch.save(result, f"{out}.{dist_ctx.rank}.pt")
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
