"""The nccl path of Ulysses sequence parallelism on CUDA (gpu tier).

One process per GPU, world = min(2, GPUs): NCCL refuses two ranks on one device, so a one-GPU machine
runs a pseudo-SP group of one rank, where the all-to-all is an identity that still goes through nccl's
kernel and Ulysses attention runs its CUDA sdpa path. The all-to-all is checked against slicing the full
tensor, and the attention (forward and input gradients; 4, 2 and 1 KV heads, repeated when fewer than S)
against sdpa on the full sequence; a packed row with a shared prompt runs block by block against sdpa
under the equivalent dense mask. S=1 vs S=2 of the whole model is the CPU tests' job (gloo, fp32)."""

from __future__ import annotations

import json

import pytest
import torch
from test_sequence_parallel import _launch

pytestmark = pytest.mark.gpu


def test_nccl_all_to_all_and_ulysses_attention_on_cuda(tmp_path):
    world = min(2, torch.cuda.device_count())
    out = tmp_path / "cuda.json"
    _launch("cuda", tmp_path, world, world, out, 29771)
    result = json.loads(out.read_text())
    assert result["backend"] == "nccl" and result["world"] == world
    assert result["seq_to_heads"] == 0.0 and result["round_trip"] == 0.0  # a permutation: exact
    checked = [k for k in result if k.startswith("attention_kv")]
    assert len(checked) == 3, result
    for key in checked:
        assert result[key] <= 1e-5, (key, result)
        assert result[key.replace("attention", "grad")] <= 1e-4, (key, result)
    assert result["blocked_attention"] <= 1e-5 and result["blocked_grad"] <= 1e-4, result
