import logging

import pytest
import torch

from vrl.algorithms.sampling import GroupAccumulator, filter_groups, overlong_penalty


def test_filter_groups_drops_constant_and_singleton_groups():
    ids = torch.tensor([4, 4, 1, 1, 1, 8, 6, 6])
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 0.3, 0.2, 0.2])
    keep = filter_groups(rewards, ids)
    assert keep.tolist() == [True, True, False, False, False, False, False, False]


def _round(values: list[list[float]], tag: str):
    """Samples named '<tag><group><member>', group ids restart at 0 every round."""
    samples, rewards, ids = [], [], []
    for g, vals in enumerate(values):
        for m, v in enumerate(vals):
            samples.append(f"{tag}{g}{m}")
            rewards.append(v)
            ids.append(g)
    return samples, torch.tensor(rewards), torch.tensor(ids)


def test_accumulator_refills_until_enough_groups():
    acc = GroupAccumulator[str](num_groups=3, max_rounds=5)
    keep = acc.add(*_round([[1, 0], [1, 1], [0, 1]], "a"))  # group a1 all-equal
    assert keep.tolist() == [True, True, False, False, True, True]
    assert not acc.done
    acc.add(*_round([[0, 0], [0, 1], [1, 0]], "b"))  # b0 dropped; now 4 informative groups
    assert acc.done and acc.full and not acc.exhausted
    assert acc.stats() == {"rounds": 2, "groups_kept": 3, "groups_dropped": 2, "groups_surplus": 1}
    samples, ids = acc.take()
    assert samples == ["a00", "a01", "a20", "a21", "b10", "b11"]
    assert ids.tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(RuntimeError, match="after done"):
        acc.add(*_round([[1, 0]], "c"))


def test_accumulator_gives_up_after_max_rounds(caplog):
    acc = GroupAccumulator[str](num_groups=2, max_rounds=2)
    acc.add(*_round([[1, 1], [0, 1]], "a"))
    acc.add(*_round([[0, 0]], "b"))
    assert acc.done and acc.exhausted
    with caplog.at_level(logging.WARNING, logger="vrl"):
        samples, ids = acc.take()
    assert samples == ["a10", "a11"] and ids.tolist() == [0, 0]
    assert acc.stats()["groups_dropped"] == 2
    assert "1/2 informative groups after 2 rounds" in caplog.text


def test_accumulator_unlimited_rounds_and_bad_args():
    acc = GroupAccumulator[int](num_groups=1, max_rounds=0)
    for _ in range(20):
        acc.add([0, 1], torch.tensor([1.0, 1.0]), torch.tensor([0, 0]))
    assert not acc.done and acc.rounds == 20
    with pytest.raises(ValueError, match="num_groups"):
        GroupAccumulator(num_groups=0)
    with pytest.raises(ValueError, match="samples"):
        acc.add([0], torch.tensor([1.0, 0.0]), torch.tensor([0, 0]))


def test_overlong_penalty_golden():
    # max 100, buffer 20: free up to 80, linear to -factor at 100, -factor beyond (truncated)
    lengths = torch.tensor([50, 80, 90, 95, 100, 130])
    got = overlong_penalty(lengths, max_len=100, buffer_len=20, penalty_factor=0.5)
    torch.testing.assert_close(got, torch.tensor([0.0, 0.0, -0.25, -0.375, -0.5, -0.5]))


def test_overlong_penalty_off_and_errors():
    assert torch.equal(overlong_penalty(torch.tensor([200]), 100, 0), torch.zeros(1))
    with pytest.raises(ValueError, match="buffer_len"):
        overlong_penalty(torch.tensor([1]), 100, 200)
