"""Parameter, gradient and optimizer bytes the planner predicts equal what the engines allocate, exactly.

Counted from the engines' tensors after one real update on the tiny models (``allocated.py``): distinct
storages of the parameters (FSDP2 local shards with their padding), of the gradients when the optimizer
is about to step, and of AdamW's moments (its 0-dim ``step`` counters, on the host on GPUs, are not
counted). Layouts: FSDP on 1 rank (float32 unsharded, bfloat16 sharded) in this process; FSDP on 2
ranks, Megatron TP=1, TP=2 and PP=2 (integration: gloo processes, every rank checked).
"""

from __future__ import annotations

import pytest
import torch
from allocated import measure_step
from ranks import run_ranks
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.planner.layout import Layout
from vrl.planner.model_memory import fsdp_sharded, fsdp_state, megatron_state
from vrl.planner.shapes import read_shapes
from vrl.planner.tensors import ParamShape, megatron_parameters
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn


def _update(engine, path, ctx) -> dict[str, int]:
    trajs = make_trajectories(path)
    for t, lp in zip(trajs, engine.compute_logprobs(trajs).logp):
        t.old_logp = lp
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, ctx)
    return measure_step(engine, lambda: engine.train_step(trajs, loss_fn, need_entropy=False))


def _planned(state) -> dict[str, int]:
    return {"params": state.params, "grads": state.grads, "optimizer": state.optimizer}


@pytest.mark.parametrize("rows", [1, 2, 5, 7, 64])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_fsdp_shard_sizes_follow_torch_chunk(rows, world):
    """FSDP2 pads every rank's storage to the first chunk of ``torch.chunk``; locals are the real chunks."""
    chunks = torch.chunk(torch.empty(rows, 3), world)
    for rank in range(world):
        storage, local = fsdp_sharded(ParamShape("w", (rows, 3), "decoder"), world, rank)
        assert storage == chunks[0].numel()
        assert local == (chunks[rank].numel() if rank < len(chunks) else 0)


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
@pytest.mark.parametrize(("dtype", "reference"), [("float32", False), ("bfloat16", True)])
def test_fsdp_one_rank_exact(tiny_models, name, dtype, reference):
    from vrl.engines.fsdp import FSDPEngine

    ctx = init_distributed()
    cfg = EngineConfig(lr=1e-3, param_dtype=dtype, micro_batch_size=4)
    engine = FSDPEngine(cfg, tiny_models[name], ctx, total_steps=2, with_reference=reference)
    got = _update(engine, tiny_models[name], ctx)
    want = fsdp_state(read_shapes(name), Layout("fsdp", 1, 4, dtype), 0, reference)
    assert {k: got[k] for k in ("params", "grads", "optimizer")} == _planned(want)
    assert got["step_counters"] > 0 and got["grads"] > 0


def test_megatron_stage_tensors_and_bytes_at_tp1(tiny_models):
    from vrl.engines.megatron.engine import MegatronEngine

    ctx = init_distributed()
    name = "tiny-qwen3-vl"
    cfg = EngineConfig(name="megatron", lr=1e-3, micro_batch_size=2)
    engine = MegatronEngine(cfg, tiny_models[name], ctx, total_steps=2, with_reference=True)
    shapes = read_shapes(name)
    mine = {p.name: p.shape for p in megatron_parameters(shapes, 1, 1, 0)}
    assert mine == {n: tuple(p.shape) for n, p in engine.policy.named_parameters()}
    try:
        got = _update(engine, tiny_models[name], ctx)
    finally:
        from megatron.core import parallel_state

        parallel_state.destroy_model_parallel()
    want = megatron_state(shapes, Layout("megatron", 1, 2), 0, reference=True)
    assert {k: got[k] for k in ("params", "grads", "optimizer")} == _planned(want)


@pytest.mark.integration
@pytest.mark.parametrize(
    "layout",
    [
        {"engine": "fsdp", "model": "tiny-qwen2.5-vl"},
        {"engine": "megatron", "model": "tiny-qwen3-vl", "tp": 2, "reference": True},
        {"engine": "megatron", "model": "tiny-qwen2.5-vl", "pp": 2},
    ],
    ids=["fsdp-2ranks", "megatron-tp2", "megatron-pp2"],
)
def test_two_rank_layouts_exact_on_every_rank(tiny_models, tmp_path, layout):
    results = run_ranks(2, tmp_path, timeout=600, **layout)
    for rank, result in enumerate(results):
        measured = {k: result["measured"][k] for k in ("params", "grads", "optimizer")}
        assert measured == result["planned"], f"rank {rank}"
        assert measured["grads"] > 0


def test_megatron_distributed_optimizer_bytes_per_parameter():
    """Planned once the engine has it: bf16 params, fp32 grads, fp32 main weights + moments over DP."""
    shapes = read_shapes("tiny-qwen2.5-vl")
    numel = sum(p.numel for p in megatron_parameters(shapes, 1, 1, 0))
    layout = Layout("megatron", 4, 1, "bfloat16", distributed_optimizer=True, megatron_bf16_params=True)
    state = megatron_state(shapes, layout)
    assert (state.params, state.grads) == (2 * numel, 4 * numel)
    assert state.optimizer == -(-12 * numel // 4)
    plain = megatron_state(shapes, Layout("megatron", 4, 1))
    assert plain.persistent == 16 * numel
