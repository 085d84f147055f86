"""PromptSampler: deterministic seeded epochs, exact resume, DP shards that partition each batch."""

from __future__ import annotations

import pytest

from vrl.data.sampler import PromptSampler


def draw(sampler: PromptSampler, steps: int) -> list[list[int]]:
    return [sampler.next_batch() for _ in range(steps)]


def test_epochs_are_permutations_and_seeded():
    a = draw(PromptSampler(10, 5, seed=3), 4)
    assert sorted(a[0] + a[1]) == list(range(10)) and sorted(a[2] + a[3]) == list(range(10))
    assert a[:2] != a[2:]  # a new shuffle each epoch
    assert a == draw(PromptSampler(10, 5, seed=3), 4)
    assert a != draw(PromptSampler(10, 5, seed=4), 4)


def test_batches_cross_epoch_boundaries():
    s = PromptSampler(5, 4, seed=0, shuffle=False)
    assert draw(s, 3) == [[0, 1, 2, 3], [4, 0, 1, 2], [3, 4, 0, 1]]


def test_resume_continues_exactly():
    full = draw(PromptSampler(7, 3, seed=1), 6)
    first = PromptSampler(7, 3, seed=1)
    head = draw(first, 2)
    resumed = PromptSampler(7, 3, seed=1)
    resumed.load_state_dict(first.state_dict())
    assert head + draw(resumed, 4) == full


def test_shards_partition_the_batch():
    batch = list(range(8))
    shards = [PromptSampler.shard(batch, r, 4) for r in range(4)]
    assert [x for s in shards for x in s] == batch


def test_empty_training_set_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        PromptSampler(0, 4, seed=0)
