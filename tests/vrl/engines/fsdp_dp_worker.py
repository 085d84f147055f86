"""One rank of the DP-equivalence test: every rank takes its share of the groups, one step; rank 0 saves
the (full) gradients the optimizer applied."""

import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.distributed import init_distributed, shutdown
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn


def main(model: str, out: str) -> None:
    dist_ctx = init_distributed()
    torch.manual_seed(0)
    eng = FSDPEngine(EngineConfig(lr=1e-3, micro_batch_size=2), Path(model), dist_ctx, total_steps=10)
    trajs = make_trajectories(Path(model))
    groups = sorted({t.group for t in trajs})
    mine = [t for t in trajs if groups.index(t.group) % dist_ctx.world_size == dist_ctx.rank]
    for t, lp in zip(mine, eng.compute_logprobs(mine).logp):
        t.old_logp = lp
    grads: dict[str, torch.Tensor] = {}
    original = eng.optimizer.step

    def step(*args, **kwargs):
        for name, p in eng.policy.named_parameters():
            if p.grad is not None:
                g = p.grad
                grads[name] = (g.full_tensor() if isinstance(g, DTensor) else g).clone()
        return original(*args, **kwargs)

    eng.optimizer.step = step
    eng.train_step(mine, make_loss_fn(AlgorithmConfig(), MixConfig(), mine, dist_ctx), need_entropy=False)
    if dist_ctx.is_main:
        torch.save(grads, out)
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
