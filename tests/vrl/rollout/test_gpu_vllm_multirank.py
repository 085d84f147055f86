"""GPU tier: colocated vLLM on a 2-rank trainer (one GPU per rank, bf16), modelled on
test_rollout_multirank.py: the bucketed weight sync lands in memory on every rank's engine (vLLM at
tensor-parallel size 1, two engines, and 2, one engine over both GPUs); vLLM's log-probs of its greedy
tokens agree with the trainer's within a bf16 tolerance before the update and after the sync, not in
between."""

from __future__ import annotations

import pytest
import torch
from test_rollout_multirank import run_ranks

pytestmark = pytest.mark.gpu

TOLERANCE = 0.05  # mean |Δ log-prob| per token, bf16 vLLM kernels vs the bf16 trainer


@pytest.mark.parametrize("rollout_tp", [1, 2])
def test_in_memory_sync_on_two_gpus(tiny_qwen25, tmp_path, rollout_tp):
    if torch.cuda.device_count() < 2:
        pytest.skip(f"needs 2 GPUs (one per trainer rank), found {torch.cuda.device_count()}")
    results = run_ranks(
        "vllm_sync", 2, tmp_path, timeout=1500, model=tiny_qwen25, engine="fsdp", rollout_tp=rollout_tp
    )
    for result in results:
        assert result["sync_mode"] == "memory" and result["tokens"] > 0
        assert result["before"] < TOLERANCE
        assert result["stale"] > 4 * TOLERANCE
        assert result["after"] < TOLERANCE
