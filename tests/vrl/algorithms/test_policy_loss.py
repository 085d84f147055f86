"""Golden values and gradient checks for the clipped policy loss.

Token-level case, clip_low 0.2, clip_high 0.28, dual clip 3 (range [0.8, 1.28]):
  row 0, A = +1, ratios 1, 1.5, 0.5, (1.1 padding) → losses -1, -1.28 (clipped high), -0.5
  row 1, A = -1, ratios 1, 1.5, 0.5, 4.0          → losses  1,  1.5, 0.8 (clipped low), 3 (dual clip)
"""

import math

import pytest
import torch

from vrl.algorithms.policy_loss import policy_loss

RATIOS = torch.tensor([[1.0, 1.5, 0.5, 1.1], [1.0, 1.5, 0.5, 4.0]], dtype=torch.float64)
ADV = torch.tensor([1.0, -1.0], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
CLIP = {"clip_low": 0.2, "clip_high": 0.28, "clip_c": 3.0}


def _inputs(ratios=RATIOS):
    old = torch.log(torch.tensor([[0.5, 0.4, 0.3, 0.2], [0.25, 0.5, 0.6, 0.1]], dtype=torch.float64))
    logp = (old + ratios.log()).requires_grad_(True)
    return logp, old


def test_token_level_golden_values_all_modes():
    row0, row1 = [-1.0, -1.28, -0.5], [1.0, 1.5, 0.8, 3.0]
    expected = {
        "token_mean": (sum(row0) + sum(row1)) / 7,
        "seq_mean_token_mean": (sum(row0) / 3 + sum(row1) / 4) / 2,
        "seq_mean_token_sum": (sum(row0) + sum(row1)) / 2,
    }
    for mode, value in expected.items():
        logp, old = _inputs()
        loss, metrics = policy_loss(logp, old, ADV, MASK, loss_agg_mode=mode, **CLIP)
        assert loss.item() == pytest.approx(value, abs=1e-12), mode
        assert metrics["pg_loss"] == pytest.approx(value, abs=1e-12)


def test_clip_fractions_and_ratio_metrics():
    logp, old = _inputs()
    _, m = policy_loss(logp, old, ADV, MASK, **CLIP)
    assert m["pg_clipfrac"] == pytest.approx(2 / 7)  # 1.5 high (A>0), 0.5 low (A<0)
    assert m["pg_clipfrac_high"] == pytest.approx(1 / 7)
    assert m["pg_clipfrac_low"] == pytest.approx(1 / 7)
    assert m["pg_clipfrac_dual"] == pytest.approx(1 / 7)
    assert m["ratio_max"] == pytest.approx(4.0)
    assert m["ratio_mean"] == pytest.approx((1 + 1.5 + 0.5 + 1 + 1.5 + 0.5 + 4) / 7)
    log_r = RATIOS.log()[MASK]
    assert m["approx_kl"] == pytest.approx(float(-log_r.mean()))
    assert m["approx_kl_k3"] == pytest.approx(float((log_r.exp() - 1 - log_r).mean()))
    assert m["offpolicy_frac"] == 0.0


def test_gradients_zero_exactly_where_clipped():
    logp, old = _inputs()
    loss, _ = policy_loss(logp, old, ADV, MASK, loss_agg_mode="token_mean", **CLIP)
    loss.backward()
    # d(-A r)/dlogp = -A r on unclipped tokens, / 7 tokens; 0 on clipped, dual-clipped and padding
    expected = torch.tensor([[-1.0, 0.0, -0.5, 0.0], [1.0, 1.5, 0.0, 0.0]], dtype=torch.float64) / 7
    torch.testing.assert_close(logp.grad, expected)


def test_dual_clip_off_lets_negative_advantage_grow():
    logp, old = _inputs()
    loss, m = policy_loss(logp, old, ADV, MASK, clip_low=0.2, clip_high=0.28, clip_c=None)
    loss.backward()
    assert logp.grad[1, 3].item() == pytest.approx(4.0 / 7)
    assert m["pg_clipfrac_dual"] == 0.0
    assert loss.item() == pytest.approx((-2.78 + 1 + 1.5 + 0.8 + 4.0) / 7)


def test_symmetric_clip_is_standard_ppo():
    logp, old = _inputs()
    loss, _ = policy_loss(logp, old, ADV, MASK, clip_low=0.2, clip_high=0.2)
    # row 0: -1, -1.2, -0.5; row 1: 1, 1.5, 0.8, 4
    assert loss.item() == pytest.approx((-2.7 + 7.3) / 7)


def test_gspo_sequence_ratio_value_and_analytic_gradient():
    log_r = torch.tensor([[0.1, 0.3, -0.1, 0.0], [0.05, -0.05, 0.2, 0.4]], dtype=torch.float64)
    old = torch.full_like(log_r, -1.0)
    logp = (old + log_r).requires_grad_(True)
    adv = torch.tensor([1.0, -2.0], dtype=torch.float64)
    loss, m = policy_loss(
        logp,
        old,
        adv,
        MASK,
        clip_low=0.2,
        clip_high=0.28,
        ratio_level="sequence",
        loss_agg_mode="seq_mean_token_mean",
    )
    loss.backward()
    s = torch.tensor([math.exp(0.1), math.exp(0.15)], dtype=torch.float64)  # exp(mean valid log-ratio)
    assert loss.item() == pytest.approx(float((-adv * s).mean()))
    # GSPO objective written at the sequence level: J = mean_i -A_i exp(mean_t log r_it)
    ref_logp = (old + log_r).requires_grad_(True)
    lengths = MASK.sum(-1)
    seq = ((ref_logp - old) * MASK).sum(-1) / lengths
    (-adv * seq.exp()).mean().backward()
    torch.testing.assert_close(logp.grad, ref_logp.grad)
    # analytic: -A_i s_i / (|y_i| B) on valid tokens
    analytic = (-adv * s / lengths / 2)[:, None] * MASK
    torch.testing.assert_close(logp.grad, analytic)
    assert m["ratio_mean"] == pytest.approx(float((s[0] * 3 + s[1] * 4) / 7))


def test_gspo_clipped_sequence_has_zero_gradient():
    old = torch.zeros(1, 3, dtype=torch.float64) - 2.0
    logp = (old + 0.5).requires_grad_(True)  # s = e^0.5 = 1.65 > 1.28
    loss, m = policy_loss(
        logp, old, torch.tensor([1.0]), torch.ones(1, 3, dtype=torch.bool), ratio_level="sequence"
    )
    loss.backward()
    assert torch.equal(logp.grad, torch.zeros_like(logp))
    assert m["pg_clipfrac_high"] == 1.0
    assert loss.item() == pytest.approx(-1.28)


def test_offpolicy_shaping_golden_value_and_gradient():
    gamma = 0.1
    p = torch.tensor([[0.5, 0.05, 0.9]], dtype=torch.float64)
    logp = p.log().requires_grad_(True)
    old = torch.full_like(logp, float("nan"))  # never read for off-policy tokens
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss, m = policy_loss(
        logp, old, torch.tensor([2.0]), mask, offpolicy_mask=torch.tensor([True]), offpolicy_gamma=gamma
    )
    loss.backward()
    f = p / (p + gamma)
    assert loss.item() == pytest.approx(float((-2.0 * f).mean()))
    # d f/d logp = gamma p / (p + gamma)^2; low-probability tokens get relatively more weight than under p
    torch.testing.assert_close(logp.grad, -2.0 * gamma * p / (p + gamma) ** 2 / 3)
    assert m["offpolicy_frac"] == 1.0
    assert m["offpolicy_prob_mean"] == pytest.approx(float(p.mean()))
    assert m["pg_clipfrac"] == 0.0 and not math.isnan(m["approx_kl"])


def test_mixed_on_and_offpolicy_rows():
    logp_on, old_on = _inputs()
    off_logp = torch.log(torch.tensor([[0.5, 0.5, 0.5, 0.5]], dtype=torch.float64))
    logp = torch.cat([logp_on.detach(), off_logp]).requires_grad_(True)
    old = torch.cat([old_on, torch.zeros(1, 4, dtype=torch.float64)])
    mask = torch.cat([MASK, torch.ones(1, 4, dtype=torch.bool)])
    adv = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    loss, m = policy_loss(
        logp, old, adv, mask, offpolicy_mask=torch.tensor([False, False, True]), offpolicy_gamma=0.1, **CLIP
    )
    on_sum = -2.78 + 6.3
    off_sum = 4 * -(0.5 / 0.6)
    assert loss.item() == pytest.approx((on_sum + off_sum) / 11)
    assert m["offpolicy_frac"] == pytest.approx(4 / 11)
    assert m["pg_clipfrac"] == pytest.approx(2 / 7)  # on-policy tokens only


def test_token_level_offpolicy_mask():
    logp, old = _inputs()
    off = torch.zeros(2, 4, dtype=torch.bool)
    off[1, 3] = True  # the dual-clipped token becomes off-policy: -A p/(p+γ) with p = 0.4
    loss, _ = policy_loss(logp, old, ADV, MASK, offpolicy_mask=off, offpolicy_gamma=0.1, **CLIP)
    assert loss.item() == pytest.approx((-2.78 + 1 + 1.5 + 0.8 + 0.4 / 0.5) / 7)


def test_per_token_advantages_accepted():
    logp, old = _inputs()
    a, _ = policy_loss(logp, old, ADV, MASK, **CLIP)
    b, _ = policy_loss(logp, old, ADV[:, None].expand(2, 4), MASK, **CLIP)
    assert a.item() == b.item()


def test_input_errors():
    logp, old = _inputs()
    with pytest.raises(ValueError, match="clip_c must be > 1"):
        policy_loss(logp, old, ADV, MASK, clip_c=0.5)
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(logp, old, ADV[:1], MASK)
    with pytest.raises(ValueError, match="Unknown ratio_level 'seq'"):
        policy_loss(logp, old, ADV, MASK, ratio_level="seq")
    with pytest.raises(ValueError, match="offpolicy_mask"):
        policy_loss(logp, old, ADV, MASK, offpolicy_mask=torch.ones(3, dtype=torch.bool))
