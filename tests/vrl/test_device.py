"""CPU thread sharing of vrl.device."""

import torch

from vrl import device


def test_async_sides_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "has_gpu", lambda: False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert device.share_cpu_threads(2) == 2 and torch.get_num_threads() == 2
        torch.set_num_threads(1)
        assert device.share_cpu_threads(2) == 1 and torch.get_num_threads() == 1  # never below one
        torch.set_num_threads(4)
        assert device.share_cpu_threads(1) is None and torch.get_num_threads() == 4
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
        assert device.share_cpu_threads(2) is None and torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
