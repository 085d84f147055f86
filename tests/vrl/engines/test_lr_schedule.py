"""vrl.engines.lr_schedule: warm-start phase, RL ramp and cosine decay."""

import math

import pytest

from vrl.engines.config import EngineConfig
from vrl.engines.lr_schedule import lr_lambda


def test_lr_schedule_has_a_warm_start_phase_then_its_own_rl_ramp():
    cfg = EngineConfig(lr=1e-4, warmup_steps=2, lr_schedule="cosine", min_lr_ratio=0.1)
    fn = lr_lambda(cfg, total_steps=10, sft_steps=4, sft_lr=3e-3)
    assert [round(fn(s) * cfg.lr, 7) for s in range(4)] == [1.5e-3, 3e-3, 3e-3, 3e-3]
    assert [fn(s) for s in (4, 5)] == [0.5, 1.0]  # RL ramps again to engine.lr
    assert fn(9) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))
    plain = lr_lambda(cfg, total_steps=10)
    assert [plain(s) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_lambda(cfg, 10, sft_steps=4)(3) == 1.0  # sft_lr 0: engine.lr
