"""Golden values for the KL coefficient controllers (verl's AdaptiveKLController rule) and their state."""

import json
import math

import pytest

from vrl.algorithms.kl_control import (
    AdaptiveKLController,
    FixedKLController,
    build_kl_controller,
    kl_controller_names,
)


def test_registry():
    assert kl_controller_names() == ["adaptive", "fixed"]
    with pytest.raises(ValueError, match=r"Unknown KL controller 'pid'. Known: adaptive, fixed"):
        build_kl_controller("pid", 0.1, 0.1, 100)


def test_fixed_never_changes():
    ctrl = build_kl_controller("fixed", 0.05, 0.1, 100)
    assert isinstance(ctrl, FixedKLController)
    ctrl.update(10.0, 1000)
    assert ctrl.value == 0.05


def test_adaptive_golden_steps():
    ctrl = build_kl_controller("adaptive", 0.1, 0.1, 100)
    assert isinstance(ctrl, AdaptiveKLController)
    # KL 0.15 over target 0.1: error 0.5, clipped to 0.2 → x (1 + 0.2 * 10 / 100) = x 1.02
    ctrl.update(0.15, 10)
    assert ctrl.value == pytest.approx(0.102, abs=1e-15)
    # KL 0.09: error -0.1 → x (1 - 0.1 * 10 / 100) = x 0.99
    ctrl.update(0.09, 10)
    assert ctrl.value == pytest.approx(0.102 * 0.99, abs=1e-15)
    # on target: unchanged; far below: error clipped to -0.2 → x 0.98
    ctrl.update(0.1, 10)
    assert ctrl.value == pytest.approx(0.10098, abs=1e-15)
    ctrl.update(0.0, 10)
    assert ctrl.value == pytest.approx(0.10098 * 0.98, abs=1e-15)


def test_adaptive_converges_towards_target_direction():
    ctrl = AdaptiveKLController(0.01, target_kl=0.05, horizon=1000)
    for _ in range(50):
        ctrl.update(0.5, 64)  # far above target: the coefficient grows by 1 + 0.2 * 64/1000 per step
    assert ctrl.value == pytest.approx(0.01 * (1 + 0.2 * 64 / 1000) ** 50)


def test_state_dict_round_trip_through_json():
    ctrl = build_kl_controller("adaptive", 0.1, 0.1, 100)
    for kl in (0.3, 0.02, 0.11):
        ctrl.update(kl, 7)
    state = json.loads(json.dumps(ctrl.state_dict()))  # the trainer's checkpoint is JSON
    resumed = build_kl_controller("adaptive", 0.1, 0.1, 100)
    resumed.load_state_dict(state)
    assert resumed.value == ctrl.value  # bit-identical
    ctrl.update(0.2, 7)
    resumed.update(0.2, 7)
    assert resumed.value == ctrl.value
    fixed = FixedKLController(0.2)
    fixed.load_state_dict({"value": 0.3})
    assert fixed.value == 0.3


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="must start > 0"):
        AdaptiveKLController(0.0, 0.1, 100)
    with pytest.raises(ValueError, match="kl_target and kl_horizon"):
        AdaptiveKLController(0.1, 0.0, 100)
    with pytest.raises(ValueError, match="too small"):
        AdaptiveKLController(0.1, 0.1, 10).update(0.0, 60)  # x (1 - 0.2 * 6) < 0
    with pytest.raises(ValueError, match="not finite"):
        AdaptiveKLController(0.1, 0.1, 10).update(math.nan, 1)
    with pytest.raises(ValueError, match="kl_coef"):
        FixedKLController(-1.0)
