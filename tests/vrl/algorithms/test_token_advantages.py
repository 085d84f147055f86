"""Golden values for the estimators added after GRPO's family: grpo_passk (outcome), REINFORCE++, its
baseline variant and ReMax (token-level, (B, T)). Every expected number is derived in the comments."""

import math

import pytest
import torch

from vrl.algorithms.advantages import (
    compute_advantages,
    discounted_returns,
    get_advantage,
    is_token_level,
    token_level_rewards,
)

EPS = 1e-6


def _mask(lengths, width):
    return torch.arange(width)[None] < torch.tensor(lengths)[:, None]


# ---- grpo_passk -------------------------------------------------------------------------------------------


def test_grpo_passk_golden_only_the_best_learns():
    ids = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3])
    rewards = torch.tensor([0.2, 1.0, 0.5, 1.0, 1.0, 5.0, 0.0, 3.0, 1.0])
    # group 0: best 1.0 (index 1), runner-up 0.5 → margin 0.5; values 0.2, 1, 0.5: sum of squared
    #   deviations = 1.29 - 1.7²/3 = 0.98/3, unbiased var 0.98/6
    # group 1: a tie (1, 1) → margin 0; group 2: singleton → 0
    # group 3: best 3.0 (index 7), runner-up 1.0 → margin 2; values 0, 3, 1: 10 - 16/3 = 14/3, var 7/3
    expected = torch.zeros(9)
    expected[1] = 0.5 / (math.sqrt(0.98 / 6) + EPS)
    expected[7] = 2.0 / (math.sqrt(7 / 3) + EPS)
    got = compute_advantages("grpo_passk", rewards, ids, EPS)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert not is_token_level("grpo_passk")


def test_grpo_passk_ties_credit_the_first_with_margin_zero_and_sums_components():
    ids = torch.tensor([4, 4, 4])
    got = get_advantage("grpo_passk")(
        {"a": torch.tensor([1.0, 1.0, 0.0]), "b": torch.tensor([1.0, 1.0, 0.0])}, ids
    )
    assert torch.equal(got, torch.zeros(3))  # totals 2, 2, 0: the maximum is tied
    got = get_advantage("grpo_passk")(torch.tensor([0.0, 1.0, 0.0]), ids)
    # best 1 over runner-up 0, divided by the unbiased std of (0, 1, 0) = sqrt(1/3)
    torch.testing.assert_close(got, torch.tensor([0.0, 1.0 / (math.sqrt(1 / 3) + 1e-6), 0.0]))


# ---- building blocks ---------------------------------------------------------------------------------------


def test_outcome_reward_on_the_last_valid_token_and_discounted_returns():
    mask = _mask([3, 2, 0], 3)
    r = token_level_rewards(torch.tensor([1.0, 2.0, 9.0]), mask, torch.full((3, 3), -0.1))
    # the token reward only where valid; the outcome on the last valid token; an empty row stays 0
    torch.testing.assert_close(r, torch.tensor([[-0.1, -0.1, 0.9], [-0.1, 1.9, 0.0], [0.0, 0.0, 0.0]]))
    g = discounted_returns(r, mask, 0.5)
    # row 0: G2 = 0.9, G1 = -0.1 + 0.45 = 0.35, G0 = -0.1 + 0.175 = 0.075; row 1: G1 = 1.9, G0 = 0.85
    torch.testing.assert_close(g, torch.tensor([[0.075, 0.35, 0.9], [0.85, 1.9, 0.0], [0.0, 0.0, 0.0]]))


# ---- REINFORCE++ -------------------------------------------------------------------------------------------


def test_reinforce_plus_plus_golden_discounted_with_token_rewards():
    mask = _mask([3, 2], 3)
    token_rewards = torch.tensor([[-0.1, 0.0, -0.2], [0.0, -0.3, 0.0]])
    # R: row 0 = [-0.1, 0, -0.2 + 1] ; row 1 = [0, -0.3 + 0] (outcome 0 on its last token)
    # G (gamma 0.5): row 0 = [0.1, 0.4, 0.8] ; row 1 = [-0.15, -0.3]
    # pool of 5 valid returns: mean 0.85 / 5 = 0.17; squared deviations 0.0049 + 0.0529 + 0.3969 + 0.1024
    # + 0.2209 = 0.778, unbiased var 0.778 / 4
    std = math.sqrt(0.778 / 4) + EPS
    expected = torch.tensor([[0.1 - 0.17, 0.4 - 0.17, 0.8 - 0.17], [-0.15 - 0.17, -0.3 - 0.17, 0.0]]) / std
    expected[1, 2] = 0.0  # padding
    got = compute_advantages(
        "reinforce_plus_plus",
        torch.tensor([1.0, 0.0]),
        torch.tensor([0, 1]),
        EPS,
        mask=mask,
        token_rewards=token_rewards,
        gamma=0.5,
    )
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert is_token_level("reinforce_plus_plus")


def test_reinforce_plus_plus_outcome_only_is_constant_per_response_and_token_weighted():
    mask = _mask([2, 1, 3], 3)
    got = compute_advantages(
        "reinforce_plus_plus", torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0, 0, 0]), EPS, mask=mask
    )
    # returns (gamma 1) = the reward on every token; pool [1, 1, 0, .5, .5, .5]: mean 3.5/6 = 7/12,
    # squared deviations 2 (5/12)^2 + (7/12)^2 + 3 (1/12)^2 = 50/144 + 49/144 + 3/144 = 102/144, var / 5
    std = math.sqrt(102 / 144 / 5) + EPS
    a, b, c = (1 - 7 / 12) / std, (0 - 7 / 12) / std, (0.5 - 7 / 12) / std
    torch.testing.assert_close(got, torch.tensor([[a, a, 0.0], [b, 0.0, 0.0], [c, c, c]]), atol=1e-6, rtol=0)


def test_reinforce_plus_plus_with_a_single_valid_token_is_zero():
    got = compute_advantages(
        "reinforce_plus_plus", torch.tensor([3.0]), torch.tensor([0]), mask=_mask([1], 2)
    )
    assert torch.equal(got, torch.zeros(1, 2))


# ---- REINFORCE++-baseline ------------------------------------------------------------------------------------


def test_reinforce_plus_plus_baseline_golden():
    ids = torch.tensor([0, 0, 0, 1, 1, 2])
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 3.0])
    mask = _mask([3, 1, 1, 1, 2, 1], 3)
    # centred by the group mean: group 0 (mean 1/3) → 2/3, -1/3, -1/3; group 1 constant → 0, 0;
    # group 2 singleton → 0 and left out of the statistics.
    # token pool (samples 0-4): 3 x 2/3, -1/3, -1/3, 0, 2 x 0 → 8 tokens, mean (2 - 2/3) / 8 = 1/6;
    # deviations 1/2 (x3), -1/2 (x2), -1/6 (x3): squares 3/4 + 2/4 + 3/36 = 4/3, unbiased var 4/3 / 7
    std = math.sqrt(4 / 21) + EPS
    hi, lo, flat = 0.5 / std, -0.5 / std, (-1 / 6) / std  # the constant group gets the batch shift
    expected = torch.tensor(
        [[hi, hi, hi], [lo, 0, 0], [lo, 0, 0], [flat, 0, 0], [flat, flat, 0], [0.0, 0, 0]]  # singleton: 0
    )
    got = compute_advantages("reinforce_plus_plus_baseline", rewards, ids, EPS, mask=mask)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_reinforce_plus_plus_baseline_sums_token_rewards_into_the_score():
    ids = torch.tensor([0, 0, 1, 1])
    mask = _mask([2, 2, 1, 2], 2)
    token = torch.tensor([[-0.5, -0.25], [0.0, 0.0], [0.1, 0.0], [0.0, 0.0]])
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.5])
    with_tokens = compute_advantages(
        "reinforce_plus_plus_baseline", rewards, ids, mask=mask, token_rewards=token
    )
    summed = rewards + torch.tensor([-0.75, 0.0, 0.1, 0.0])  # padding's token reward is ignored
    torch.testing.assert_close(
        with_tokens, compute_advantages("reinforce_plus_plus_baseline", summed, ids, mask=mask)
    )


# ---- ReMax ---------------------------------------------------------------------------------------------------


def test_remax_golden_reward_minus_greedy_baseline():
    mask = _mask([2, 3, 1], 3)
    rewards, baselines = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.5, 0.5, 1.0])
    got = compute_advantages("remax", rewards, torch.tensor([0, 0, 1]), mask=mask, baselines=baselines)
    expected = torch.tensor([[0.5, 0.5, 0.0], [-0.5, -0.5, -0.5], [0.0, 0.0, 0.0]])  # r - b, 0 on padding
    torch.testing.assert_close(got, expected)


def test_remax_with_token_rewards_uses_undiscounted_returns():
    mask = _mask([2], 3)
    got = compute_advantages(
        "remax",
        torch.tensor([1.0]),
        torch.tensor([0]),
        mask=mask,
        token_rewards=torch.tensor([[-0.1, -0.2, -5.0]]),
        baselines=torch.tensor([0.5]),
        gamma=0.5,  # not read by remax
    )
    # R = [-0.1, -0.2 + 1]; G = [0.7, 0.8]; minus b = 0.5
    torch.testing.assert_close(got, torch.tensor([[0.2, 0.3, 0.0]]))


def test_remax_without_baselines_raises():
    with pytest.raises(ValueError, match="greedy response"):
        compute_advantages("remax", torch.ones(2), torch.tensor([0, 0]), mask=_mask([1, 1], 1))


# ---- the interface -------------------------------------------------------------------------------------------


def test_interface_errors():
    with pytest.raises(ValueError, match="token-level: it needs the response mask"):
        compute_advantages("reinforce_plus_plus", torch.ones(2), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="one reward per response"):
        compute_advantages("grpo", torch.ones(2), torch.tensor([0, 0]), token_rewards=torch.zeros(2, 1))
    with pytest.raises(ValueError, match="token_rewards must be"):
        compute_advantages(
            "reinforce_plus_plus", torch.ones(2), torch.tensor([0, 0]), mask=_mask([1, 1], 2),
            token_rewards=torch.zeros(2, 3),
        )  # fmt: skip
    with pytest.raises(ValueError, match="gamma"):
        compute_advantages(
            "reinforce_plus_plus", torch.ones(1), torch.tensor([0]), mask=_mask([1], 1), gamma=2
        )
    with pytest.raises(ValueError, match="Unknown advantage estimator"):
        is_token_level("reinforce")


def test_advantages_carry_no_gradient():
    rewards = torch.tensor([1.0, 0.0], requires_grad=True)
    got = compute_advantages("reinforce_plus_plus", rewards, torch.tensor([0, 0]), mask=_mask([2, 2], 2))
    assert not got.requires_grad
