"""One rank of the token-budget DP test: rank 0 takes groups 0-2, rank 1 group 3 (uneven shares), packed
with shared prompts under a token budget, one step; rank 0 saves the full gradients the optimizer applied
and every rank's number of passes."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
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
    trajs = make_trajectories(Path(model))
    budget = 2 * max(t.prompt.input_ids.numel() + t.response_len for t in trajs)
    cfg = EngineConfig(lr=1e-3, max_tokens_per_micro_batch=budget, packing=True)
    eng = FSDPEngine(cfg, Path(model), dist_ctx, total_steps=10)
    mine = [t for t in trajs if (t.group < 3) == (dist_ctx.rank == 0)] if dist_ctx.world_size > 1 else trajs
    for t, lp in zip(mine, eng.compute_logprobs(mine).logp):
        t.old_logp = lp
    passes = torch.tensor([len(eng._split(mine, training=True)[0])] * dist_ctx.world_size)
    if dist_ctx.world_size > 1:
        mine_count = torch.zeros(dist_ctx.world_size, dtype=torch.long)
        mine_count[dist_ctx.rank] = passes[0]
        dist.all_reduce(mine_count)
        passes = mine_count
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
        torch.save({**grads, "passes": passes.tolist()}, out)
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
