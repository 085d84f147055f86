"""Golden values for the KL estimators: policy p = 0.5, reference q = 0.25 for the sampled token.

d = log q - log p = -log 2;  k1 = log 2 = 0.693147;  k3 = e^d - d - 1 = 0.5 + log 2 - 1 = 0.193147;
mse = 0.5 (log 2)^2 = 0.240227;  abs = |d| = log 2.
full (whole distributions): p = [1/2, 1/4, 1/4, 0], q = [1/4] * 4 → KL = 1/2 log 2 + 0 + 0 + 0 = 0.346574.
"""

import math

import pytest
import torch

from vrl.algorithms.kl import kl_estimate, kl_kinds, kl_loss, kl_penalty

LOGP = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
REF = torch.log(torch.tensor([[0.25, 0.5]], dtype=torch.float64))
LN2 = math.log(2)


@pytest.mark.parametrize(
    ("kind", "value"),
    [("none", 0.0), ("k1", LN2), ("k3", 0.5 + LN2 - 1), ("mse", 0.5 * LN2**2), ("abs", LN2)],
)
def test_golden_values(kind, value):
    kl = kl_estimate(LOGP, REF, kind)
    assert kl[0, 0].item() == pytest.approx(value, abs=1e-12)
    assert kl[0, 1].item() == 0.0  # identical distributions


def test_kinds_and_unknown():
    assert kl_kinds() == ["abs", "full", "k1", "k3", "mse", "none"]
    with pytest.raises(ValueError, match=r"Unknown KL estimator 'low_var'.*abs, full, k1, k3, mse, none"):
        kl_estimate(LOGP, REF, "low_var")


def test_k3_is_unbiased_and_lower_variance_than_k1():
    # KL(p || q) for p = [0.7, 0.2, 0.1], q = [0.4, 0.4, 0.2]; samples from p.
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    q = torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64)
    exact = float((p * (p / q).log()).sum())
    k1 = kl_estimate(p.log(), q.log(), "k1")
    k3 = kl_estimate(p.log(), q.log(), "k3")
    assert float((p * k1).sum()) == pytest.approx(exact)
    assert float((p * k3).sum()) == pytest.approx(exact)
    var = lambda k: float((p * (k - exact) ** 2).sum())  # noqa: E731
    assert var(k3) < var(k1)
    assert (k3 >= 0).all()


def test_k3_is_clamped_for_stability():
    logp = torch.tensor([[-60.0, -1.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, -60.0]])
    kl = kl_estimate(logp, ref, "k3")
    assert kl[0, 0].item() == 10.0  # exp(59) would be ~4e25
    assert kl[0, 1].item() == 10.0  # e^-59 + 59 - 1 = 58, clamped
    kl.sum().backward()
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[0, 0].item() == 0.0  # clamped: no gradient


def test_kl_gradients_match_analytic():
    logp = LOGP.clone().requires_grad_(True)
    kl_estimate(logp, REF, "k3").sum().backward()
    # d/dlogp (e^(q-p) - (q-p) - 1) = 1 - e^(q-p) = 1 - 0.5
    assert logp.grad[0, 0].item() == pytest.approx(0.5)
    logp.grad = None
    kl_estimate(logp, REF, "mse").sum().backward()
    assert logp.grad[0, 0].item() == pytest.approx(LN2)


def test_kl_loss_aggregates_and_detaches_reference():
    ref = REF.clone().requires_grad_(True)
    mask = torch.tensor([[1, 0]])
    loss = kl_loss(LOGP, ref, mask, "k1", "token_mean")
    assert loss.item() == pytest.approx(LN2)
    assert not loss.requires_grad


def test_kl_penalty_is_per_token_masked_and_detached():
    logp = LOGP.clone().requires_grad_(True)
    pen = kl_penalty(logp, REF, torch.tensor([[1, 1]]), "k1", coef=0.1)
    assert not pen.requires_grad
    torch.testing.assert_close(pen, torch.tensor([[0.1 * LN2, 0.0]], dtype=torch.float64))
    pen = kl_penalty(logp, REF, torch.tensor([[0, 1]]), "k1", coef=0.1)
    assert pen.sum().item() == 0.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        kl_estimate(LOGP, REF[:, :1], "k1")


def test_abs_is_symmetric_with_sign_gradient():
    logp = LOGP.clone().requires_grad_(True)
    kl = kl_estimate(logp, REF, "abs")
    assert kl[0, 0].item() == pytest.approx(LN2)
    assert kl_estimate(REF, LOGP, "abs")[0, 0].item() == pytest.approx(LN2)  # |d| either way round
    kl[0, 0].backward()
    assert logp.grad[0, 0].item() == 1.0  # sign(log p - log q) = +1


def test_full_kl_golden_and_zero_probability_entries():
    p = torch.tensor([[[0.5, 0.25, 0.25, 0.0]]], dtype=torch.float64)
    q = torch.full((1, 1, 4), 0.25, dtype=torch.float64)
    kl = kl_estimate(p.log(), q.log(), "full")
    assert kl.shape == (1, 1)
    assert kl.item() == pytest.approx(0.5 * LN2, abs=1e-15)
    assert torch.isfinite(kl).all()  # the p = 0 entry (log p = -inf) contributes 0, not NaN


def test_full_kl_gradient_matches_analytic():
    # d KL(softmax(z) || q) / d z_j = p_j (log p_j - log q_j - KL)
    z = torch.tensor([[[0.3, -1.0, 2.0, 0.5]]], dtype=torch.float64, requires_grad=True)
    ref = torch.log_softmax(torch.tensor([[[1.0, 0.0, 0.5, -0.5]]], dtype=torch.float64), -1)
    logp = torch.log_softmax(z, -1)
    kl = kl_estimate(logp, ref, "full")
    kl.sum().backward()
    p = logp.detach().exp()
    analytic = p * (logp.detach() - ref - kl.detach()[..., None])
    torch.testing.assert_close(z.grad, analytic)


def test_full_kl_refuses_sampled_token_logprobs():
    with pytest.raises(ValueError, match=r"full log-distributions \(B, T, V\)"):
        kl_estimate(LOGP, REF, "full")
