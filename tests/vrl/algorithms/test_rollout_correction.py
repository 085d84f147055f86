"""Golden values for the rollout-correction weights (TIS, MIS) and their diagnostics.

Sampled-token ratios ρ = π_train / π_rollout, cap C = 2:
  row 0: 0.5, 1.0, 1.5, 3.0     row 1: 2.5, 1.2, (padding)
TIS min(ρ, 2): 0.5, 1, 1.5, 2 | 2, 1.2, 0      MIS ρ·[ρ <= 2]: 0.5, 1, 1.5, 0 | 0, 1.2, 0
mean ρ = 9.7 / 6; capped 2 / 6; k1 = -log(0.5·1·1.5·3·2.5·1.2) / 6 = -log(6.75) / 6;
k3 = mean(ρ - 1 - log ρ) = (9.7 - 6 - log 6.75) / 6.
"""

import math

import pytest
import torch

from vrl.algorithms.policy_loss import policy_loss
from vrl.algorithms.rollout_correction import (
    rollout_correction_metrics,
    rollout_correction_modes,
    rollout_correction_weights,
)

F64 = torch.float64
RATIOS = torch.tensor([[0.5, 1.0, 1.5, 3.0], [2.5, 1.2, 1.0, 1.0]], dtype=F64)
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
ROLLOUT = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1], [0.2, 0.5, 0.3, 0.3]], dtype=F64))
TRAIN = ROLLOUT + RATIOS.log()


def test_modes_and_unknown():
    assert rollout_correction_modes() == ["mis", "none", "tis"]
    with pytest.raises(ValueError, match=r"Unknown rollout correction 'cis'. Known: mis, none, tis"):
        rollout_correction_weights(TRAIN, ROLLOUT, MASK, "cis", 2.0)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("tis", [[0.5, 1.0, 1.5, 2.0], [2.0, 1.2, 0.0, 0.0]]),
        ("mis", [[0.5, 1.0, 1.5, 0.0], [0.0, 1.2, 0.0, 0.0]]),
        ("none", [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]),
    ],
)
def test_weights_golden(mode, expected):
    train = TRAIN.clone().requires_grad_(True)
    w = rollout_correction_weights(train, ROLLOUT, MASK, mode, cap=2.0)
    torch.testing.assert_close(w, torch.tensor(expected, dtype=F64))
    assert not w.requires_grad  # detached: a weight, not a path for the gradient


def test_metrics_golden():
    m = rollout_correction_metrics(TRAIN, ROLLOUT, MASK, cap=2.0)
    assert m["is_ratio_mean"] == pytest.approx(9.7 / 6)
    assert m["is_ratio_max"] == pytest.approx(3.0)
    assert m["is_capped_frac"] == pytest.approx(2 / 6)
    assert m["kl_k1"] == pytest.approx(-math.log(6.75) / 6)
    assert m["kl_k3"] == pytest.approx((9.7 - 6 - math.log(6.75)) / 6)


def test_kl_estimates_are_exact_on_a_batch_with_the_rollout_frequencies():
    # tokens a, b, c drawn from π_rollout = (0.7, 0.2, 0.1) exactly 7, 2, 1 times out of 10; π_train =
    # (0.4, 0.4, 0.2): both estimators then equal KL(π_rollout || π_train) = sum p_r log(p_r / p_t)
    p_r = torch.tensor([0.7] * 7 + [0.2] * 2 + [0.1], dtype=F64)[None]
    p_t = torch.tensor([0.4] * 7 + [0.4] * 2 + [0.2], dtype=F64)[None]
    exact = 0.7 * math.log(0.7 / 0.4) + 0.2 * math.log(0.2 / 0.4) + 0.1 * math.log(0.1 / 0.2)
    m = rollout_correction_metrics(p_t.log(), p_r.log(), torch.ones(1, 10, dtype=torch.bool), cap=2.0)
    assert m["kl_k1"] == pytest.approx(exact)
    assert m["kl_k3"] == pytest.approx(exact)


def test_identical_policies_give_unit_weights_and_zero_kl():
    m = rollout_correction_metrics(ROLLOUT, ROLLOUT, MASK, cap=2.0)
    assert m == {"is_ratio_mean": 1.0, "is_ratio_max": 1.0, "is_capped_frac": 0.0, "kl_k1": 0.0, "kl_k3": 0.0}
    w = rollout_correction_weights(ROLLOUT, ROLLOUT, MASK, "tis", 2.0)
    assert torch.equal(w, MASK.to(F64))


def test_empty_batch_and_input_errors():
    empty = torch.zeros(1, 2, dtype=torch.bool)
    assert rollout_correction_metrics(TRAIN[:1, :2], ROLLOUT[:1, :2], empty, 2.0)["is_ratio_mean"] == 0.0
    with pytest.raises(ValueError, match="cap must be >= 1"):
        rollout_correction_weights(TRAIN, ROLLOUT, MASK, "tis", 0.5)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        rollout_correction_weights(TRAIN, ROLLOUT[:, :2], MASK, "tis", 2.0)


def test_extreme_log_ratio_is_clamped_not_overflowing():
    train = torch.tensor([[0.0]], dtype=F64)
    rollout = torch.tensor([[-100.0]], dtype=F64)
    w = rollout_correction_weights(train, rollout, torch.ones(1, 1, dtype=torch.bool), "mis", 2.0)
    assert w.item() == 0.0
    m = rollout_correction_metrics(train, rollout, torch.ones(1, 1, dtype=torch.bool), 2.0)
    assert m["is_ratio_max"] == pytest.approx(math.exp(20.0))


def test_tis_weights_scale_the_on_policy_gradient():
    # one on-policy update (old = current): PPO's ratio is 1, so d loss / d logp_t = -A w_t / N
    logp = TRAIN.clone().requires_grad_(True)
    w = rollout_correction_weights(TRAIN, ROLLOUT, MASK, "tis", cap=2.0)
    loss, _ = policy_loss(logp, TRAIN, torch.tensor([1.0, 1.0], dtype=F64), MASK, token_weights=w)
    (grad,) = torch.autograd.grad(loss, logp)
    torch.testing.assert_close(grad, -w / 6)
