"""engine.distributed_optimizer: megatron-core's DDP + DistributedOptimizer (ZeRO-1) give today's plain AdamW
update, with the optimizer state sharded over data-parallel ranks (memory counted from the tensors)."""

from __future__ import annotations

import pytest
from engine_ops import build_engine, grpo_update
from launch import run_ranks
from mm_batch import multimodal_trajectories

from vrl import device
from vrl.models.loading import load_processor

UPDATE_TOL = 1e-6  # the bound for one update (fp32, gloo)


def _weights(engine) -> dict:
    return {n: t.clone() for n, t in engine.rollout_weights()}


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_one_update_equals_plain_adamw_one_process(name, one_process, mg_models):
    path = mg_models[name]
    trajs = multimodal_trajectories(load_processor(path))
    plain = build_engine({}, one_process, path)
    zero = build_engine({"distributed_optimizer": True}, one_process, path)
    before = _weights(plain)
    a, b = grpo_update(plain, trajs, one_process), grpo_update(zero, trajs, one_process)
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-7)
    assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-9)  # both accumulate in fp64
    wa, wb = _weights(plain), _weights(zero)
    diff = max(float((wa[n] - wb[n]).abs().max()) for n in wa)
    assert diff < UPDATE_TOL
    assert max(float((wa[n] - before[n]).abs().max()) for n in wa) > 5 * UPDATE_TOL  # lr 1e-5: it moved
    print(f"distributed optimizer vs plain AdamW, {name}, one process: max weight diff {diff:.2e}")
    assert zero.lr == plain.lr and zero.scheduler.last_epoch == 1


def test_memory_of_the_distributed_optimizer_one_process(one_process, mg_models):
    path = mg_models["tiny-qwen2.5-vl"]
    zero = build_engine({"distributed_optimizer": True}, one_process, path)
    grpo_update(zero, multimodal_trajectories(load_processor(path)), one_process)
    n = sum(p.numel() for p in zero.policy.parameters())
    mem = zero.memory_breakdown()
    buffers = zero.zero.ddp.buffers
    assert mem["params"] == sum(b.param_data.untyped_storage().nbytes() for b in buffers) >= 4 * n
    assert mem["grads"] == sum(b.grad_data.untyped_storage().nbytes() for b in buffers) >= 4 * n
    assert mem["main_weights"] == 0  # fp32 parameters are their own main weights
    shards = [p for g in zero.optimizer.param_groups for p in g["params"]]
    assert sum(p.numel() for p in shards) == n  # one data-parallel rank: the whole model
    assert mem["optimizer"] == 8 * n + 4 * len(shards)  # two fp32 moments per element, an fp32 step each


@pytest.mark.integration
@pytest.mark.parametrize(
    ("world", "kw"),
    [
        (2, {}),
        (4, {"tp": 2, "grad_clip": 0.0}),  # unclipped: the applied gradients are compared as well
        (4, {"pp": 2, "num_microbatches": 2, "micro_batch_size": 1, "grad_clip": 0.0}),
    ],
    ids=["dp2", "tp2dp2", "pp2dp2"],
)
def test_sharded_update_equals_plain_adamw(world, kw, mg_models, tmp_path):
    """DP ranks take their share of the batch; on every rank the distributed optimizer's update equals the
    plain one within 1e-6 (Adam's first step is nearly sign(gradient), so the gradient norm and, unclipped,
    the gradients themselves are compared too; the norm counts every shard once, which megatron's did not
    before the shards carried its tensor-parallel tags) and its optimizer state is 1/DP of the plain one's."""
    variant = {"distributed_optimizer": True}
    results = run_ranks(
        "variant", world, tmp_path, model=str(mg_models["tiny-qwen2.5-vl"]), variant=variant, **kw
    )
    dp = results[0]["dp_size"]
    assert dp == 2
    for r in results:
        plain, zero = r["plain"], r["variant"]
        assert r["max_weight_diff"] < UPDATE_TOL and plain["moved"] > 5 * UPDATE_TOL
        if "max_grad_diff" in r:  # this rank's slice of every reduced gradient equals the plain one's
            assert r["grad_tensors"] > 0 and r["max_grad_diff"] <= 1e-6 * r["max_grad"]
        assert zero["metrics"]["loss"] == pytest.approx(plain["metrics"]["loss"], abs=1e-7)
        assert zero["metrics"]["grad_norm"] == pytest.approx(plain["metrics"]["grad_norm"], rel=1e-9)
        n, tensors = plain["num_params"], plain["num_tensors"]
        assert plain["memory"]["optimizer"] == 8 * n + 4 * tensors
        # this rank's slice of the moments: about 1/DP of the elements (megatron splits a padded buffer)
        assert 0.99 * 8 * n / dp <= zero["memory"]["optimizer"] <= 1.01 * 8 * n / dp + 4 * tensors
        assert zero["memory"]["grads"] >= 4 * n and zero["memory"]["main_weights"] == 0
        b = r["buckets"]
        assert b["left_alive"] == 0 and b["peak_extra"] <= 3 * b["largest_tensor"]  # bucket + one gather
    print(
        "distributed optimizer",
        kw,
        [(r["max_weight_diff"], r["plain"]["memory"], r["variant"]["memory"]) for r in results],
    )


@pytest.mark.gpu
@pytest.mark.skipif(not device.has_gpu(), reason="bfloat16 parameters with fp32 main weights need a CUDA GPU")
def test_bf16_parameters_keep_fp32_main_weights_and_gradients(one_process, mg_models):
    """param_dtype=bfloat16 with the distributed optimizer: bf16 parameters and compute, fp32 gradient
    buffers (reduction in fp32), fp32 main weights that carry the update; log-probs and the update close to
    the fp32 engine's (bf16 tolerance)."""
    import torch

    path = mg_models["tiny-qwen2.5-vl"]
    trajs = multimodal_trajectories(load_processor(path))
    fp32 = build_engine({}, one_process, path)
    bf16 = build_engine({"distributed_optimizer": True, "param_dtype": "bfloat16"}, one_process, path)
    params = list(bf16.policy.parameters())
    n = sum(p.numel() for p in params)
    assert all(p.dtype == torch.bfloat16 for p in params)
    assert all(b.grad_data.dtype == torch.float32 for b in bf16.zero.ddp.buffers)
    before = {i: bf16.zero.full_tensor(p, "param").clone() for i, p in enumerate(params)}
    lp32, lp16 = fp32.compute_logprobs(trajs).logp, bf16.compute_logprobs(trajs).logp
    assert max(float((a - b).abs().max()) for a, b in zip(lp32, lp16)) < 0.1
    grpo_update(fp32, trajs, one_process)
    grpo_update(bf16, trajs, one_process)
    after = {i: bf16.zero.full_tensor(p, "param") for i, p in enumerate(params)}
    moved = max(float((after[i] - before[i]).abs().max()) for i in after)
    assert moved > 0.5 * 1e-5  # the fp32 main weights take the lr=1e-5 step bf16 parameters cannot hold
    mem = bf16.memory_breakdown()
    assert 2 * n <= mem["params"] < 2.1 * n and 4 * n <= mem["grads"] < 4.2 * n
    assert mem["main_weights"] == 4 * n  # one rank: every fp32 main weight
    assert 8 * n <= mem["optimizer"] <= 8 * n + 4 * len(params)
    assert sum(mem.values()) <= torch.cuda.memory_allocated()
