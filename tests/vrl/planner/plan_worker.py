"""One rank of the planner's exactness check: build an engine, run one update, count what it allocated,
and write that next to what the planner says for this rank (``<out>/rank<r>.json``).

``python plan_worker.py <out_dir> <json kwargs>`` with RANK/WORLD_SIZE/MASTER_* set (started by
:func:`ranks.run_ranks` the way torchrun would).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))  # tests/ (vrl_fixtures)

import torch.distributed as dist
from allocated import measure_step
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.distributed import init_distributed, shutdown
from vrl.engines.config import EngineConfig
from vrl.models.tiny import resolve_model
from vrl.planner.layout import Layout
from vrl.planner.model_memory import fsdp_state, megatron_state
from vrl.planner.shapes import read_shapes
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn


def main() -> None:
    import faulthandler

    out_dir, kw = Path(sys.argv[1]), json.loads(sys.argv[2])
    # a hung rank shows where, shortly before the launcher kills it
    faulthandler.dump_traceback_later(max(60, kw.get("limit_s", 600) - 60), exit=True)
    tp, pp, sp = kw.get("tp", 1), kw.get("pp", 1), kw.get("sp", 1)
    ctx = init_distributed(model_parallel=(tp, pp), sequence_parallel=sp)
    try:
        path = resolve_model(kw["model"])
        cfg = EngineConfig(
            name=kw["engine"],
            lr=1e-3,
            micro_batch_size=2,
            param_dtype=kw.get("param_dtype", "float32"),
            tensor_parallel_size=tp,
            pipeline_parallel_size=pp,
            sequence_parallel_size=sp,
            packing=kw.get("packing", False),
            distributed_optimizer=kw.get("distributed_optimizer", False),
            sequence_parallel=kw.get("sequence_parallel", False),
        )
        cfg.validate()
        reference = kw.get("reference", False)
        if cfg.name == "fsdp":
            from vrl.engines.fsdp import FSDPEngine as cls
        else:
            from vrl.engines.megatron.engine import MegatronEngine as cls
        engine = cls(cfg, path, ctx, total_steps=2, with_reference=reference)
        trajs = make_trajectories(path)
        # each data-parallel rank its share (the ranks of one TP/PP/SP group see the same trajectories)
        trajs = trajs[ctx.dp_rank :: ctx.dp_size]
        for t, lp in zip(trajs, engine.compute_logprobs(trajs).logp):
            t.old_logp = lp
        loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, ctx)
        got = measure_step(engine, lambda: engine.train_step(trajs, loss_fn, need_entropy=False))
        layout = Layout(
            cfg.name,
            ctx.world_size,
            2,
            cfg.param_dtype,
            tp=tp,
            pp=pp,
            sp=sp,
            packing=cfg.packing,
            distributed_optimizer=cfg.distributed_optimizer,
            megatron_sequence_parallel=cfg.sequence_parallel,
        )
        shapes = read_shapes(kw["model"])
        if cfg.name == "fsdp":
            want = fsdp_state(shapes, layout, ctx.rank, reference)
        else:
            g = engine.groups
            want = megatron_state(shapes, layout, g.pp_rank, reference, g.dp_rank)
        result = {
            "measured": got,
            "planned": {"params": want.params, "grads": want.grads, "optimizer": want.optimizer},
        }
        (out_dir / f"rank{ctx.rank}.json").write_text(json.dumps(result))
        dist.barrier()
    finally:
        shutdown()


if __name__ == "__main__":
    main()
