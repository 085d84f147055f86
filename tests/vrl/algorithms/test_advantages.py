"""Golden values for the advantage estimators.

Convention pinned here: the group std is the UNBIASED (n - 1) estimator, and eps is added to the std.
The batch interleaves four groups with non-contiguous ids:
  id 7 (size 4): rewards 1, 0, 0, 1   mean 0.5, unbiased std sqrt(1/3)
  id 2 (size 3): rewards 2, 4, 6      mean 4,   unbiased std 2
  id 5 (size 1): reward 3             singleton → 0
  id 9 (size 2): rewards 0.5, 0.5     constant  → 0
"""

import math

import pytest
import torch

from vrl.algorithms.advantages import advantage_names, compute_advantages, get_advantage, register_advantage

IDS = torch.tensor([7, 2, 7, 5, 9, 2, 7, 9, 2, 7])
REWARDS = torch.tensor([1.0, 2.0, 0.0, 3.0, 0.5, 4.0, 0.0, 0.5, 6.0, 1.0])
EPS = 1e-6


def _golden(per_id: dict[int, list[float]]) -> torch.Tensor:
    """Scatter per-group golden lists back to batch order."""
    cursor = {k: iter(v) for k, v in per_id.items()}
    return torch.tensor([next(cursor[int(i)]) for i in IDS])


def test_registry_names_and_unknown():
    assert advantage_names() == [
        "drgrpo",
        "gdpo",
        "grpo",
        "grpo_passk",
        "reinforce_plus_plus",
        "reinforce_plus_plus_baseline",
        "remax",
        "rloo",
    ]
    with pytest.raises(
        ValueError, match=r"Unknown advantage estimator 'ppo'.*drgrpo, gdpo, grpo, grpo_passk"
    ):
        get_advantage("ppo")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_advantage("grpo")(lambda r, g, e: r)


def test_grpo_golden_unbiased_std():
    a = 0.5 / math.sqrt(1 / 3)  # 0.8660254: with the biased std it would be 1.0
    expected = _golden({7: [a, -a, -a, a], 2: [-1.0, 0.0, 1.0], 5: [0.0], 9: [0.0, 0.0]})
    got = get_advantage("grpo")(REWARDS, IDS, EPS)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_drgrpo_golden_mean_only():
    expected = _golden({7: [0.5, -0.5, -0.5, 0.5], 2: [-2.0, 0.0, 2.0], 5: [0.0], 9: [0.0, 0.0]})
    torch.testing.assert_close(get_advantage("drgrpo")(REWARDS, IDS, EPS), expected)


def test_rloo_golden_leave_one_out():
    # r_i - mean(others): id 7: 1 - 1/3 = 2/3; id 2: 2 - 5 = -3, 4 - 4 = 0, 6 - 3 = 3
    t = 2 / 3
    expected = _golden({7: [t, -t, -t, t], 2: [-3.0, 0.0, 3.0], 5: [0.0], 9: [0.0, 0.0]})
    torch.testing.assert_close(get_advantage("rloo")(REWARDS, IDS, EPS), expected)


def test_gdpo_golden_per_key_then_batch_whitening():
    # groups 0, 1 of size 2 and a singleton 2.
    ids = torch.tensor([0, 0, 1, 1, 2])
    rewards = {
        "accuracy": torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0]),
        "format": torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0]),
    }
    # per key, group-normalised: accuracy → ±1/sqrt(2) in group 0, 0 in group 1 (constant);
    # format → 0 in group 0, ±1/sqrt(2) in group 1; summed: [h, -h, h, -h], h = 0.7071.
    # batch whitening over the 4 non-singleton samples: mean 0, unbiased std sqrt(4 h² / 3) → ±sqrt(3)/2.
    s = math.sqrt(3) / 2
    expected = torch.tensor([s, -s, s, -s, 0.0])
    torch.testing.assert_close(get_advantage("gdpo")(rewards, ids, EPS), expected, atol=1e-5, rtol=0)


def test_gdpo_keeps_reward_combinations_distinct_where_grpo_collapses():
    # Two rewards, group of 4; combos (1,0) and (0,1) collapse to the same GRPO advantage.
    ids = torch.zeros(4, dtype=torch.long)
    acc = torch.tensor([1.0, 0.0, 1.0, 0.0])
    fmt = torch.tensor([0.0, 1.0, 1.0, 1.0])
    grpo = get_advantage("grpo")({"a": acc, "f": fmt}, ids, EPS)
    gdpo = get_advantage("gdpo")({"a": acc, "f": fmt}, ids, EPS)
    assert torch.isclose(grpo[0], grpo[1])
    assert not torch.isclose(gdpo[0], gdpo[1])


def test_dict_rewards_are_summed_for_non_gdpo():
    parts = {"a": REWARDS * 0.25, "b": REWARDS * 0.75}
    for name in ("grpo", "drgrpo", "rloo"):
        torch.testing.assert_close(
            get_advantage(name)(parts, IDS, EPS), get_advantage(name)(REWARDS, IDS, EPS)
        )


@pytest.mark.parametrize("name", ["grpo", "drgrpo", "rloo", "gdpo"])
def test_constant_and_singleton_groups_are_exactly_zero(name):
    ids = torch.tensor([0, 0, 0, 1, 2, 2])
    rewards = torch.tensor([0.1, 0.1, 0.1, 5.0, 0.3, 0.7])
    adv = get_advantage(name)(rewards, ids, EPS)
    assert torch.equal(adv[:4], torch.zeros(4))
    assert adv[4] < 0 < adv[5]


@pytest.mark.parametrize("name", ["grpo", "drgrpo", "rloo", "gdpo"])
def test_permutation_and_relabelling_equivariance(name):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (40,), generator=gen)
    rewards = torch.rand(40, generator=gen)
    adv = get_advantage(name)(rewards, ids, EPS)
    perm = torch.randperm(40, generator=gen)
    relabel = ids[perm] * 1000 + 17  # arbitrary, non-contiguous ids
    torch.testing.assert_close(get_advantage(name)(rewards[perm], relabel, EPS), adv[perm])


def test_grpo_group_stats_property():
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 5, (64,), generator=gen)
    rewards = torch.randn(64, generator=gen, dtype=torch.float64)
    adv = get_advantage("grpo")(rewards, ids, 0.0)
    for g in ids.unique():
        sel = adv[ids == g]
        if sel.numel() > 1:
            assert abs(float(sel.sum())) < 1e-9
            assert abs(float(sel.std(unbiased=True)) - 1.0) < 1e-9


def test_integer_rewards_and_no_grad():
    adv = compute_advantages("grpo", torch.tensor([1, 0]), torch.tensor([3, 3]))
    assert adv.dtype == torch.float32 and not adv.requires_grad
    assert adv[0] > 0 > adv[1]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        get_advantage("grpo")(torch.ones(3), torch.zeros(4, dtype=torch.long), EPS)
    with pytest.raises(ValueError, match="integer"):
        get_advantage("grpo")(torch.ones(3), torch.zeros(3), EPS)
    with pytest.raises(ValueError, match="NaN"):
        get_advantage("grpo")(torch.tensor([1.0, float("nan")]), torch.zeros(2, dtype=torch.long), EPS)
    with pytest.raises(ValueError, match="empty"):
        get_advantage("gdpo")({}, torch.zeros(2, dtype=torch.long), EPS)


def test_plain_python_lists_accepted():
    adv = get_advantage("drgrpo")([1.0, 0.0, 2.0], [0, 0, 1])
    torch.testing.assert_close(adv, torch.tensor([0.5, -0.5, 0.0]))
