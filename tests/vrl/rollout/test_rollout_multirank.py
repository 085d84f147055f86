"""Multi-rank rollout on CPU (gloo, 2 processes): prompts scattered to rollout groups and results gathered
back equal each rank generating alone; a colocated vLLM engine on every rank receives the bucketed weight
sync in memory from FSDP (2 ranks) and from Megatron at TP=2, with vLLM at TP=1 (two engines, prompts split
over them) and at TP=2 (one engine over both ranks)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("rollout_rank_worker.py")
TOLERANCE = 1e-4  # fp32 on CPU: vLLM's and torch's kernels sum in different orders


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(scenario: str, world: int, out_dir: Path, timeout: float, **kwargs) -> list[dict]:
    """``scenario`` of rollout_rank_worker.py on ``world`` ranks (torchrun's environment); each rank's
    result, or a RuntimeError with the failed ranks' log tails."""
    out_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    procs = []
    logs = contextlib.ExitStack()
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore",
        }
        log = logs.enter_context(open(out_dir / f"rank{rank}.log", "w"))  # noqa: SIM115 (closed by the stack)
        cmd = [sys.executable, str(WORKER), scenario, str(out_dir), json.dumps(kwargs, default=str)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    failed = []
    with logs:
        try:
            for rank, proc in enumerate(procs):
                if proc.wait(timeout=timeout) != 0:
                    failed.append(rank)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
    if failed:
        tails = "\n".join(f"--- rank {r}\n" + (out_dir / f"rank{r}.log").read_text()[-4000:] for r in failed)
        raise RuntimeError(f"ranks {failed} of '{scenario}' failed:\n{tails}")
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(world)]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("dp_ranks", "counts", "rollout_tp", "local"),
    [
        ([0, 1], [2, 2], 1, True),  # FSDP: every rank its own engine and prompts, nothing exchanged
        ([0, 0], [3], 1, False),  # Megatron TP=2, rollout TP=1: two engines split the shared prompts
        ([0, 1], [1, 2], 2, False),  # one rollout group of two ranks runs both ranks' prompts
    ],
    ids=["fsdp-local", "shared-prompts-split", "one-group-of-two"],
)
def test_grouped_generation_equals_each_rank_alone(
    tiny_qwen25, tmp_path, dp_ranks, counts, rollout_tp, local
):
    results = run_ranks(
        "groups",
        2,
        tmp_path,
        timeout=600,
        model=tiny_qwen25,
        dp_ranks=dp_ranks,
        counts=counts,
        rollout_tp=rollout_tp,
    )
    for rank, result in enumerate(results):
        assert result["local"] == local
        assert result["n"] == counts[dp_ranks[rank]]
        assert len(result["grouped"]) == result["n"] > 0
        assert result["grouped"] == result["alone"], rank
    if dp_ranks == [0, 0]:
        assert results[0]["grouped"] == results[1]["grouped"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("engine", "tp", "rollout_tp"),
    [("fsdp", 1, 1), ("megatron", 2, 1), ("megatron", 2, 2)],
    ids=["fsdp-2ranks", "megatron-tp2-rollout-tp1", "megatron-tp2-rollout-tp2"],
)
def test_in_memory_sync_on_every_rank(tiny_qwen25, tmp_path, engine, tp, rollout_tp):
    results = run_ranks(
        "vllm_sync", 2, tmp_path, timeout=1500, model=tiny_qwen25, engine=engine, tp=tp, rollout_tp=rollout_tp
    )
    for result in results:
        assert result["sync_mode"] == "memory"
        assert result["local"] == (engine == "fsdp" and rollout_tp == 1)
        assert result["tokens"] > 0 and result["buckets"] > 1  # ~6 MB in 1 MiB buckets
        assert result["before"] < TOLERANCE
        assert result["stale"] > 10 * TOLERANCE  # updated without a sync: vLLM's weights are old
        assert result["after"] < TOLERANCE  # the streamed buckets arrived on every rank's engine
