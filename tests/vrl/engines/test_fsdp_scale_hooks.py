"""The FSDP engine's memory accounting (local shards of its tensors) and bucketed weight stream."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bucket_checks import check_buckets
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.engines.memory import COMPONENTS
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

ROOT = Path(__file__).resolve().parents[3]


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def test_memory_breakdown_one_process(tiny_qwen25):
    eng = FSDPEngine(EngineConfig(lr=1e-3), tiny_qwen25, init_distributed(), total_steps=10)
    params = list(eng.policy.parameters())
    assert eng.memory_breakdown() == {
        "params": _bytes(params),
        "grads": _bytes(params),
        "optimizer": 0,
        "main_weights": 0,
    }
    trajs = make_trajectories(tiny_qwen25)
    for t, lp in zip(trajs, eng.compute_logprobs(trajs).logp):
        t.old_logp = lp
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, init_distributed())
    eng.train_step(trajs, loss_fn, need_entropy=False)
    got = eng.memory_breakdown()
    assert tuple(got) == COMPONENTS
    assert got["optimizer"] == 2 * _bytes(params) + 4 * len(params)  # AdamW moments + an fp32 step each


def test_buckets_one_process(tiny_qwen25):
    eng = FSDPEngine(EngineConfig(lr=1e-3), tiny_qwen25, init_distributed(), total_steps=10)
    got = check_buckets(eng, 256 * 1024)
    assert got["num_buckets"] > 5 and got["left_alive"] == 0


@pytest.mark.integration
def test_two_ranks_count_local_shards_and_gather_per_bucket(tiny_qwen25, tmp_path):
    script = Path(__file__).with_name("fsdp_scale_worker.py")
    env = {
        **os.environ,
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29637",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT / 'tests' / 'vrl' / 'engines'}:{ROOT}",
    }
    out = tmp_path / "r"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tiny_qwen25), str(out)],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
        )
        for r in range(2)
    ]
    assert all(p.wait(timeout=600) == 0 for p in procs)
    results = [torch.load(f"{out}.{r}.pt") for r in range(2)]
    for res in results:
        mem = res["breakdown"]
        assert res["sharded"]
        assert mem["grads"] == res["applied_grads"] == res["local_params"]
        assert mem["optimizer"] == 2 * res["local_params"] + 4 * res["num_params"]
        assert res["local_params"] <= mem["params"] <= res["local_params"] * 1.05  # FSDP's shard padding
        assert res["buckets"]["left_alive"] == 0 and res["buckets"]["num_buckets"] > 5
    full = results[0]["full_params"]
    assert sum(r["local_params"] for r in results) == full
