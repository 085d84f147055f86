"""The CPU compatibility layer: CUDA-only calls work inside ``cpu_redirect`` and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from vrl import device
from vrl.engines.megatron import compat

PACKAGE = Path(compat.__file__).parent


@pytest.mark.skipif(device.has_gpu(), reason="the redirection is only active without a GPU")
def test_cuda_calls_land_on_cpu_inside_and_fail_outside():
    with compat.cpu_redirect():
        assert torch.zeros(2, device="cuda").device.type == "cpu"
        assert torch.empty(3, device=torch.cuda.current_device()).device.type == "cpu"
        assert torch.ones(2).cuda().device.type == "cpu"
        torch.cuda.synchronize()
        with compat.cpu_redirect():  # re-entrant
            assert torch.zeros(1, device="cuda:0").device.type == "cpu"
        assert torch.zeros(1, device="cuda").device.type == "cpu"
    with pytest.raises((AssertionError, RuntimeError)):
        torch.zeros(2, device="cuda")
    with pytest.raises((AssertionError, RuntimeError)):
        torch.cuda.current_device()


def test_no_cuda_calls_outside_the_compat_module():
    pattern = re.compile(r"torch\.cuda|\.cuda\(|device=\"cuda")
    offenders = [
        f"{path.name}:{i}"
        for path in PACKAGE.glob("*.py")
        if path.name != "compat.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
