import pytest
import torch

from vrl.algorithms.aggregation import aggregate_loss
from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.kl import kl_loss
from vrl.algorithms.objective import actor_loss, shape_rewards
from vrl.algorithms.policy_loss import policy_loss


def _batch():
    gen = torch.Generator().manual_seed(0)
    old = -torch.rand(3, 5, generator=gen, dtype=torch.float64) - 0.5
    logp = (old + 0.1 * torch.randn(3, 5, generator=gen, dtype=torch.float64)).requires_grad_(True)
    ref = old - 0.2
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[0, 3:] = False
    ent = torch.rand(3, 5, generator=gen, dtype=torch.float64)
    return logp, old, ref, mask, ent, torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)


def test_actor_loss_is_pg_plus_kl_minus_entropy():
    cfg = AlgorithmConfig(kl="k3", kl_coef=0.1, entropy_coef=0.01, loss_agg_mode="seq_mean_token_mean")
    logp, old, ref, mask, ent, adv = _batch()
    loss, m = actor_loss(cfg, logp, old, adv, mask, ref_logp=ref, entropy=ent)
    pg, _ = policy_loss(logp, old, adv, mask, clip_c=3.0, loss_agg_mode="seq_mean_token_mean")
    kl = kl_loss(logp, ref, mask, "k3", "seq_mean_token_mean")
    bonus = aggregate_loss(ent, mask, "seq_mean_token_mean")
    assert loss.item() == pytest.approx((pg + 0.1 * kl - 0.01 * bonus).item())
    assert m["kl_loss"] == pytest.approx(kl.item()) and m["entropy"] == pytest.approx(bonus.item())
    assert m["loss"] == pytest.approx(loss.item())
    loss.backward()
    assert logp.grad is not None and torch.all(logp.grad[0, 3:] == 0)


def test_actor_loss_defaults_need_no_reference_and_missing_inputs_raise():
    logp, old, _, mask, _, adv = _batch()
    loss, m = actor_loss(AlgorithmConfig(), logp, old, adv, mask)
    assert "kl_loss" not in m and torch.isfinite(loss)
    with pytest.raises(ValueError, match="ref_logp"):
        actor_loss(AlgorithmConfig(kl="k1"), logp, old, adv, mask)
    with pytest.raises(ValueError, match="entropy"):
        actor_loss(AlgorithmConfig(entropy_coef=0.1), logp, old, adv, mask)


def test_shape_rewards_overlong_and_kl_reward():
    cfg = AlgorithmConfig(
        overlong_buffer_len=4, overlong_penalty_factor=1.0, kl="k1", kl_coef=0.5, kl_as="reward"
    )
    logp = torch.zeros(2, 3)
    ref = torch.full((2, 3), -1.0)  # k1 = 1 per token
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = shape_rewards(
        cfg, torch.tensor([1.0, 1.0]), torch.tensor([2, 10]), 10, logp=logp, ref_logp=ref, mask=mask
    )
    # row 0: no overlong, KL 0.5 * 2 tokens; row 1: -1 overlong, KL 0.5 * 3 tokens
    torch.testing.assert_close(out, torch.tensor([0.0, -1.5]))
    with pytest.raises(ValueError, match="kl_as=reward"):
        shape_rewards(cfg, torch.ones(2), torch.tensor([2, 10]), 10)


def test_actor_loss_uses_the_configured_policy_loss_and_token_weights():
    cfg = AlgorithmConfig(policy_loss="cispo")
    logp, old, _, mask, _, adv = _batch()
    weights = torch.rand(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    loss, m = actor_loss(cfg, logp, old, adv, mask, token_weights=weights)
    ref, _ = policy_loss(logp, old, adv, mask, loss_mode="cispo", token_weights=weights)
    assert loss.item() == pytest.approx(ref.item())
    assert "kl" not in m and "kl_coef" not in m


def test_kl_coef_from_a_controller_overrides_the_config():
    cfg = AlgorithmConfig(kl="k1", kl_coef=0.1)
    logp, old, ref, mask, _, adv = _batch()
    base, _ = actor_loss(cfg, logp, old, adv, mask, ref_logp=ref, kl_coef=0.0)
    loss, m = actor_loss(cfg, logp, old, adv, mask, ref_logp=ref, kl_coef=0.5)
    kl = kl_loss(logp, ref, mask, "k1", "token_mean")
    assert loss.item() == pytest.approx(base.item() + 0.5 * kl.item())
    assert m["kl_coef"] == 0.5 and m["kl"] == pytest.approx(kl.item())


def test_kl_metric_is_local_and_reported_with_kl_as_reward():
    cfg = AlgorithmConfig(kl="k3", kl_coef=0.2, kl_as="reward")
    logp, old, ref, mask, _, adv = _batch()
    pg, _ = policy_loss(logp, old, adv, mask, clip_c=3.0)
    # global denominators (micro-batching) change the loss's scale, not the metric
    loss, m = actor_loss(cfg, logp, old, adv, mask, ref_logp=ref, num_tokens=100.0)
    kl = kl_loss(logp, ref, mask, "k3", "token_mean")
    assert m["kl"] == pytest.approx(kl.item()) and m["kl_coef"] == 0.2 and "kl_loss" not in m
    pg_global, _ = policy_loss(logp, old, adv, mask, clip_c=3.0, num_tokens=100.0)
    assert loss.item() == pytest.approx(pg_global.item())  # no KL term in the loss
    assert pg.item() != pytest.approx(pg_global.item())


def test_token_kl_rewards_and_shape_rewards_without_kl():
    from vrl.algorithms.objective import token_kl_rewards

    cfg = AlgorithmConfig(kl="k1", kl_coef=0.5, kl_as="reward", overlong_buffer_len=4)
    logp = torch.zeros(2, 3)
    ref = torch.full((2, 3), -1.0)  # k1 = 1 per token
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    per_token = token_kl_rewards(cfg, logp, ref, mask)
    torch.testing.assert_close(per_token, torch.tensor([[-0.5, -0.5, 0.0], [-0.5, -0.5, -0.5]]))
    torch.testing.assert_close(token_kl_rewards(cfg, logp, ref, mask, kl_coef=1.0), 2 * per_token)
    out = shape_rewards(cfg, torch.tensor([1.0, 1.0]), torch.tensor([2, 10]), 10, include_kl=False)
    torch.testing.assert_close(out, torch.tensor([1.0, 0.0]))  # overlong only
    out = shape_rewards(
        cfg,
        torch.tensor([1.0, 1.0]),
        torch.tensor([2, 10]),
        10,
        logp=logp,
        ref_logp=ref,
        mask=mask,
        kl_coef=1.0,
    )
    torch.testing.assert_close(out, torch.tensor([-1.0, -3.0]))
    assert token_kl_rewards(AlgorithmConfig(), logp, ref, mask) is None
