"""The policy-loss modes beyond PPO's clip: the GSPO clamp (after the sequence mean, no gradient beyond it),
GSPO-token, CISPO, and per-token weights. Expected values are derived in the comments; gradients are taken
with torch.autograd and compared with the analytic ones."""

import math

import pytest
import torch

from vrl.algorithms.policy_loss import policy_loss, policy_loss_modes

F64 = torch.float64


def _logp(log_ratio, old=-1.0):
    """(logp with grad, old_logp) so that logp - old_logp = log_ratio."""
    log_ratio = torch.as_tensor(log_ratio, dtype=F64)
    old_logp = torch.full_like(log_ratio, old)
    return (old_logp + log_ratio).requires_grad_(True), old_logp


def test_registry():
    assert policy_loss_modes() == ["cispo", "gspo_token", "vanilla"]
    logp, old = _logp([[0.0]])
    with pytest.raises(ValueError, match=r"Unknown policy loss 'gspo'. Known: cispo, gspo_token, vanilla"):
        policy_loss(logp, old, torch.ones(1), torch.ones(1, 1, dtype=torch.bool), loss_mode="gspo")


# ---- GSPO's clamp --------------------------------------------------------------------------------------------

SEQ = {"ratio_level": "sequence", "loss_agg_mode": "seq_mean_token_mean", "clip_c": None}


@pytest.mark.parametrize("mode", ["vanilla", "gspo_token"])
def test_sequence_log_ratio_is_the_mean_of_unclamped_token_log_ratios(mode):
    # token log-ratios 30, 0, 0: their mean is 10 (clamping the 30 to 20 first would give 6.67)
    logp, old = _logp([[30.0, 0.0, 0.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss, m = policy_loss(logp, old, torch.tensor([-1.0], dtype=F64), mask, loss_mode=mode, **SEQ)
    s = math.exp(10.0)
    # A = -1, s far above 1 + clip_high and no dual clip: l = max(s, 1.28) = s on every token
    assert loss.item() == pytest.approx(s, rel=1e-12)
    assert m["ratio_max"] == pytest.approx(s, rel=1e-12)
    loss.backward()
    # inside the clamp: d l / d logp_t = -A s / |y| (vanilla, through the mean; gspo_token: s on its own
    # token, then the per-sequence mean divides by |y|), the same for both
    torch.testing.assert_close(logp.grad, torch.full((1, 3), s / 3, dtype=F64))


@pytest.mark.parametrize("mode", ["vanilla", "gspo_token"])
@pytest.mark.parametrize(("tokens", "adv"), [([75.0, 0.0, 0.0], -1.0), ([-75.0, 0.0, 0.0], 1.0)])
def test_beyond_the_clamp_no_gradient_flows(mode, tokens, adv):
    # sequence log-ratio ±25 lies beyond ±20: the ratio is exp(±20) and carries no gradient, even with
    # dual clip off (A = -1: the unclipped branch -A s is the active one and would be ~e^20 / 3 per token;
    # A = +1 below the range: max(-s, -0.8) = -s is active too)
    logp, old = _logp([tokens])
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss, m = policy_loss(logp, old, torch.tensor([adv], dtype=F64), mask, loss_mode=mode, **SEQ)
    bound = math.exp(math.copysign(20.0, tokens[0]))
    assert loss.item() == pytest.approx(-adv * bound, rel=1e-12)
    (grad,) = torch.autograd.grad(loss, logp)
    assert torch.equal(grad, torch.zeros_like(grad))
    assert m["ratio_max"] == pytest.approx(bound, rel=1e-12)


def test_just_inside_the_clamp_the_gradient_is_finite_and_analytic():
    logp, old = _logp([[57.0, 0.0, 0.0]])  # mean 19 < 20
    loss, _ = policy_loss(
        logp, old, torch.tensor([-1.0], dtype=F64), torch.ones(1, 3, dtype=torch.bool), **SEQ
    )
    (grad,) = torch.autograd.grad(loss, logp)
    torch.testing.assert_close(grad, torch.full((1, 3), math.exp(19.0) / 3, dtype=F64))


def test_token_ratio_beyond_the_clamp_has_no_gradient():
    logp, old = _logp([[25.0, 0.1]])
    loss, _ = policy_loss(
        logp, old, torch.tensor([-1.0], dtype=F64), torch.ones(1, 2, dtype=torch.bool), clip_c=None
    )
    (grad,) = torch.autograd.grad(loss, logp)
    # token 0 beyond the clamp: 0; token 1: -A r / 2 tokens
    torch.testing.assert_close(grad, torch.tensor([[0.0, math.exp(0.1) / 2]], dtype=F64))


# ---- GSPO-token ----------------------------------------------------------------------------------------------

LOG_R = [[0.1, 0.3, -0.1, 0.0], [0.05, -0.05, 0.2, 0.4]]  # sequence means 0.1 and 0.15
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
CLIP = {"clip_low": 0.2, "clip_high": 0.28}


def test_gspo_token_golden_with_per_token_advantages():
    adv = torch.tensor([[1.0, -1.0, 2.0, 0.0], [0.5, -0.5, 1.0, -1.0]], dtype=F64)
    s = torch.tensor([math.exp(0.1), math.exp(0.15)], dtype=F64)  # inside [0.8, 1.28]: nothing clipped
    logp, old = _logp(LOG_R)
    loss, m = policy_loss(
        logp, old, adv, MASK, loss_mode="gspo_token", loss_agg_mode="seq_mean_token_mean", **CLIP
    )
    # row 0: mean(-1, 1, -2) s0 = -2/3 s0; row 1: mean(-0.5, 0.5, -1, 1) s1 = 0; mean over 2 rows
    assert loss.item() == pytest.approx(-2 / 3 * s[0].item() / 2, rel=1e-12)
    loss.backward()
    # d/dlogp_t = -A_t s_i / (|y_i| B): every token keeps its own advantage
    expected = -adv * s[:, None] / torch.tensor([[3.0], [4.0]], dtype=F64) / 2 * MASK
    torch.testing.assert_close(logp.grad, expected)
    assert m["ratio_mean"] == pytest.approx(float((3 * s[0] + 4 * s[1]) / 7))


def test_vanilla_sequence_ratio_mixes_per_token_advantages_through_the_mean():
    adv = torch.tensor([[1.0, -1.0, 2.0, 0.0], [0.5, -0.5, 1.0, -1.0]], dtype=F64)
    logp, old = _logp(LOG_R)
    loss, _ = policy_loss(
        logp, old, adv, MASK, ratio_level="sequence", loss_agg_mode="seq_mean_token_mean", **CLIP
    )
    loss.backward()
    # same value as gspo_token, but every token of row i gets -mean(A_i) s_i / (|y_i| B): row 0 mean(A) =
    # 2/3, row 1 mean(A) = 0 → no gradient at all for row 1
    s0 = math.exp(0.1)
    expected = torch.tensor([[-2 / 3 * s0 / 6] * 3 + [0.0], [0.0] * 4], dtype=F64)
    torch.testing.assert_close(logp.grad, expected)


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"])
def test_gspo_token_equals_gspo_with_one_advantage_per_sequence(agg):
    gen = torch.Generator().manual_seed(0)
    log_r = 0.3 * torch.randn(3, 5, generator=gen, dtype=F64)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[0, 2:] = False
    adv = torch.tensor([1.0, -0.5, 2.0], dtype=F64)
    results = []
    for kwargs in ({"loss_mode": "gspo_token"}, {"ratio_level": "sequence"}):
        logp, old = _logp(log_r)
        loss, _ = policy_loss(logp, old, adv, mask, loss_agg_mode=agg, clip_c=3.0, **CLIP, **kwargs)
        (grad,) = torch.autograd.grad(loss, logp)
        results.append((loss.detach(), grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_gspo_token_clips_per_token_by_advantage_sign():
    logp, old = _logp([[0.5, 0.5, 0.5]])  # s = e^0.5 = 1.6487 > 1.28
    adv = torch.tensor([[1.0, -1.0, 1.0]], dtype=F64)
    loss, m = policy_loss(logp, old, adv, torch.ones(1, 3, dtype=torch.bool), loss_mode="gspo_token", **CLIP)
    s = math.exp(0.5)
    # A > 0: clipped at 1.28 (no gradient); A < 0: max(s, 1.28) = s, unclipped (dual clip off)
    assert loss.item() == pytest.approx((-1.28 + s - 1.28) / 3)
    (grad,) = torch.autograd.grad(loss, logp)
    torch.testing.assert_close(grad, torch.tensor([[0.0, s / 3, 0.0]], dtype=F64))
    assert m["pg_clipfrac_high"] == pytest.approx(2 / 3)


# ---- CISPO ---------------------------------------------------------------------------------------------------

RATIOS = torch.tensor([[1.0, 1.5, 0.5, 1.1], [1.0, 1.5, 0.5, 4.0]], dtype=F64)
ADV = torch.tensor([1.0, -1.0], dtype=F64)
CISPO_MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)


def test_cispo_golden_value_and_gradient_on_every_token():
    logp, old = _logp(RATIOS.log())
    loss, m = policy_loss(logp, old, ADV, CISPO_MASK, loss_mode="cispo", clip_c=3.0, **CLIP)
    # weights clip(r, 0.8, 1.28): row 0 → 1, 1.28, 0.8; row 1 → 1, 1.28, 0.8, 1.28 (dual clip not used)
    # per-token value -A w: row 0 → -1, -1.28, -0.8; row 1 → 1, 1.28, 0.8, 1.28; token mean over 7
    assert loss.item() == pytest.approx((-3.08 + 4.36) / 7, abs=1e-12)
    (grad,) = torch.autograd.grad(loss, logp)
    # d/dlogp = -A w / 7 on every valid token, clipped ones included (PPO would give them 0)
    expected = torch.tensor([[-1.0, -1.28, -0.8, 0.0], [1.0, 1.28, 0.8, 1.28]], dtype=F64) / 7
    torch.testing.assert_close(grad, expected)
    assert m["pg_clipfrac"] == pytest.approx(5 / 7)
    assert m["pg_clipfrac_high"] == pytest.approx(3 / 7)
    assert m["pg_clipfrac_low"] == pytest.approx(2 / 7)
    assert m["pg_clipfrac_dual"] == 0.0


def test_cispo_gradient_equals_the_paper_form_minus_sg_w_a_logp():
    logp, old = _logp(RATIOS.log())
    loss, _ = policy_loss(logp, old, ADV, CISPO_MASK, loss_mode="cispo", **CLIP)
    (ours,) = torch.autograd.grad(loss, logp)
    paper_logp = logp.detach().clone().requires_grad_(True)
    w = RATIOS.clamp(0.8, 1.28)
    paper = (-w * ADV[:, None] * paper_logp)[CISPO_MASK].sum() / 7
    (theirs,) = torch.autograd.grad(paper, paper_logp)
    torch.testing.assert_close(ours, theirs)


def test_cispo_on_policy_is_reinforce():
    logp, _ = _logp([[0.2, -0.3]])
    loss, _ = policy_loss(logp, logp.detach(), torch.tensor([2.0], dtype=F64), torch.ones(1, 2, dtype=torch.bool),
                          loss_mode="cispo")  # fmt: skip
    (grad,) = torch.autograd.grad(loss, logp)
    torch.testing.assert_close(grad, torch.full((1, 2), -1.0, dtype=F64))  # -A / 2 tokens


# ---- per-token weights (rollout correction) ------------------------------------------------------------------


def test_token_weights_multiply_the_policy_gradient_term():
    logp, old = _logp(RATIOS.log())
    weights = torch.tensor([[1.0, 0.5, 0.0, 7.0], [2.0, 1.0, 1.0, 1.0]], dtype=F64)
    loss, _ = policy_loss(logp, old, ADV, CISPO_MASK, token_weights=weights, clip_c=3.0, **CLIP)
    # PPO losses: row 0 → -1, -1.28, -0.5 (x 1, 0.5, 0); row 1 → 1, 1.5, 0.8, 3 (x 2, 1, 1, 1)
    assert loss.item() == pytest.approx((-1.0 - 0.64 + 0.0 + 2.0 + 1.5 + 0.8 + 3.0) / 7)
    (grad,) = torch.autograd.grad(loss, logp)
    # unclipped tokens: -A r w / 7; row 0 token 2 has weight 0, row 1 token 2 is clipped, token 3 dual-clipped
    expected = torch.tensor([[-1.0, 0.0, 0.0, 0.0], [2.0, 1.5, 0.0, 0.0]], dtype=F64) / 7
    torch.testing.assert_close(grad, expected)
    with pytest.raises(ValueError, match="token_weights"):
        policy_loss(logp, old, ADV, CISPO_MASK, token_weights=weights[:, :2])


def test_token_weights_leave_offpolicy_tokens_alone():
    logp, old = _logp([[0.0, 0.0]])
    off = torch.tensor([[False, True]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    weights = torch.tensor([[0.5, 0.0]], dtype=F64)
    loss, _ = policy_loss(
        logp, old, torch.tensor([1.0], dtype=F64), mask, offpolicy_mask=off, token_weights=weights
    )
    p = math.exp(-1.0)
    # on-policy token: -A r w = -0.5; off-policy token: -A p / (p + 0.1), not weighted
    assert loss.item() == pytest.approx((-0.5 - p / (p + 0.1)) / 2)
