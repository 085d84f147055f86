"""Parameter, gradient and optimizer bytes the planner predicts equal what the engines allocate, exactly.

Counted from the engines' tensors after one real update on the tiny models (``allocated.py``): distinct
storages of the parameters (FSDP2 local shards with their padding), of the gradients when the optimizer
is about to step, and of AdamW's moments (its 0-dim ``step`` counters, on the host on GPUs, are not
counted; with the distributed optimizer, megatron's persistent ``main_grad`` buffer). Layouts: FSDP on 1
rank (float32 unsharded, bfloat16 sharded) and Megatron TP=1 with and without the distributed optimizer
in this process; on 2 gloo processes (integration, every rank checked) FSDP DP2, FSDP SP2 packed, Megatron
TP2, TP2 with sequence parallelism, PP2, DP2 and PP2 with the distributed optimizer; on 4 (slow) Megatron
TP2 × DP2 with the distributed optimizer and FSDP DP2 × SP2.
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


@pytest.mark.parametrize("distributed_optimizer", [False, True], ids=["plain", "distributed-optimizer"])
def test_megatron_stage_tensors_and_bytes_at_tp1(tiny_models, distributed_optimizer):
    """Names, shapes and order of the stage's parameters (megatron's DDP buffer follows the order); with
    the distributed optimizer at DP=1 the buffers' padding (64-element starts, 128-element bucket end)."""
    from vrl.engines.megatron.engine import MegatronEngine

    ctx = init_distributed()
    name = "tiny-qwen3-vl"
    cfg = EngineConfig(
        name="megatron", lr=1e-3, micro_batch_size=2, distributed_optimizer=distributed_optimizer
    )
    engine = MegatronEngine(cfg, tiny_models[name], ctx, total_steps=2, with_reference=True)
    shapes = read_shapes(name)
    mine = [(p.name, p.shape) for p in megatron_parameters(shapes, 1, 1, 0)]
    assert mine == [(n, tuple(p.shape)) for n, p in engine.policy.named_parameters()]
    try:
        got = _update(engine, tiny_models[name], ctx)
    finally:
        from megatron.core import parallel_state

        parallel_state.destroy_model_parallel()
    layout = Layout("megatron", 1, 2, distributed_optimizer=distributed_optimizer)
    want = megatron_state(shapes, layout, 0, reference=True)
    assert {k: got[k] for k in ("params", "grads", "optimizer")} == _planned(want)


@pytest.mark.integration
@pytest.mark.parametrize(
    "layout",
    [
        {"engine": "fsdp", "model": "tiny-qwen2.5-vl"},
        {"engine": "fsdp", "model": "tiny-qwen3-vl", "sp": 2, "packing": True, "reference": True},
        {"engine": "megatron", "model": "tiny-qwen3-vl", "tp": 2, "reference": True},
        {"engine": "megatron", "model": "tiny-qwen2.5-vl", "tp": 2, "sequence_parallel": True},
        {"engine": "megatron", "model": "tiny-qwen2.5-vl", "pp": 2},
        {"engine": "megatron", "model": "tiny-qwen2.5-vl", "distributed_optimizer": True, "reference": True},
        {"engine": "megatron", "model": "tiny-qwen3-vl", "pp": 2, "distributed_optimizer": True},
    ],
    ids=[
        "fsdp-2ranks",
        "fsdp-sp2-packed",
        "megatron-tp2",
        "megatron-tp2-sequence-parallel",
        "megatron-pp2",
        "megatron-dp2-distributed-optimizer",
        "megatron-pp2-distributed-optimizer",
    ],
)
def test_two_rank_layouts_exact_on_every_rank(tiny_models, tmp_path, layout):
    """Every layout the engines run on two processes (FSDP shards over all ranks, DP × SP; Megatron's
    sequence parallelism leaves the parameters as they are; the distributed optimizer's slices differ per
    DP rank by its padding)."""
    results = run_ranks(2, tmp_path, timeout=600, **layout)
    for rank, result in enumerate(results):
        measured = {k: result["measured"][k] for k in ("params", "grads", "optimizer")}
        assert measured == result["planned"], f"rank {rank}"
        assert measured["grads"] > 0


def test_megatron_distributed_optimizer_bytes_per_parameter():
    """bf16 parameters (GPU), fp32 gradients, fp32 main weights + moments over DP: 6 + 12/DP bytes per
    parameter, plus megatron's buffer padding (64-element parameter starts, buckets of lcm(DP, 128))."""
    shapes = read_shapes("tiny-qwen2.5-vl")
    params = megatron_parameters(shapes, 1, 1, 0)
    numel = sum(p.numel for p in params)
    layout = Layout("megatron", 4, 1, "bfloat16", distributed_optimizer=True, megatron_bf16_params=True)
    slices = [megatron_state(shapes, layout, dp_rank=r) for r in range(4)]
    padded = slices[0].params // 2
    assert numel <= padded < numel + 64 * len(params) + 128 and padded % 128 == 0
    assert all((s.params, s.grads) == (2 * padded, 4 * padded) for s in slices)
    assert sum(s.optimizer for s in slices) == 12 * numel  # the slices cover every parameter once
    assert all(s.detail["optimizer.main_weights"] * 3 == s.optimizer for s in slices)
    plain = megatron_state(shapes, Layout("megatron", 4, 1))
    assert plain.persistent == 16 * numel


@pytest.mark.slow
@pytest.mark.parametrize(
    "layout",
    [
        {"engine": "megatron", "model": "tiny-qwen2.5-vl", "tp": 2, "distributed_optimizer": True},
        {"engine": "fsdp", "model": "tiny-qwen2.5-vl", "sp": 2, "packing": True},
    ],
    ids=["megatron-tp2-dp2-distributed-optimizer", "fsdp-dp2-sp2-packed"],
)
def test_four_rank_layouts_exact_on_every_rank(tiny_models, tmp_path, layout):
    """Data parallelism beside model/sequence parallelism: TP2 × DP2 with the optimizer sliced over DP, and
    FSDP sharding over all four ranks of DP2 × SP2. Slow tier: four processes on 2 cores take ~70 s each
    when the machine is quiet, up to 10 minutes under load."""
    results = run_ranks(4, tmp_path, timeout=1200, **layout)
    for rank, result in enumerate(results):
        measured = {k: result["measured"][k] for k in ("params", "grads", "optimizer")}
        assert measured == result["planned"], f"rank {rank}"
    if layout["engine"] == "megatron":  # the padding falls in DP rank 1's slice
        assert len({r["measured"]["optimizer"] for r in results}) == 2
