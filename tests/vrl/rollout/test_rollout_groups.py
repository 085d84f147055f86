"""Rollout parallelism, the pure part: layouts and their validation, which rank speaks for which prompts,
how work is split over rollout groups and put back together."""

from __future__ import annotations

import pytest

from vrl.rollout.config import RolloutConfig
from vrl.rollout.groups import (
    RolloutLayout,
    assemble,
    check_rollout_layout,
    first_holders,
    plan_work,
    request_seeds,
)


def test_layout_groups_consecutive_ranks_with_the_lowest_as_leader():
    layout = RolloutLayout(world=8, tensor_parallel=2)
    assert layout.data_parallel == 4
    assert [layout.group(r) for r in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert layout.group_ranks(2) == [4, 5] and layout.leader(2) == 4
    assert [layout.is_leader(r) for r in range(4)] == [True, False, True, False]


def test_layout_checks_name_what_works():
    assert check_rollout_layout("vllm", 2, 0, world=8, ranks_per_node=4).data_parallel == 4
    assert check_rollout_layout("vllm", 4, 2, world=8, ranks_per_node=4).data_parallel == 2
    assert check_rollout_layout("hf", 1, 0, world=2, ranks_per_node=2).data_parallel == 2
    with pytest.raises(ValueError, match=r"must divide the trainer ranks per node \(4\).*\[1, 2, 4\]"):
        check_rollout_layout("vllm", 8, 0, world=8, ranks_per_node=4)  # a TP group across nodes
    with pytest.raises(ValueError, match=r"must divide the trainer ranks per node \(2\).*\[1, 2\]"):
        check_rollout_layout("vllm", 3, 0, world=6, ranks_per_node=2)
    with pytest.raises(ValueError, match=r"data_parallel_size=3.*set 0 \(derived\) or 4"):
        check_rollout_layout("vllm", 2, 3, world=8, ranks_per_node=8)
    with pytest.raises(ValueError, match=r"needs rollout\.name=vllm: the hf engine"):
        check_rollout_layout("hf", 2, 0, world=2, ranks_per_node=2)
    with pytest.raises(ValueError, match="must be >= 1"):
        check_rollout_layout("vllm", 0, 0, world=2, ranks_per_node=2)
    with pytest.raises(ValueError, match="ranks per node"):
        check_rollout_layout("vllm", 1, 0, world=6, ranks_per_node=4)


def test_config_rejects_nonsense_sizes():
    with pytest.raises(ValueError, match="tensor_parallel_size must be >= 1"):
        RolloutConfig(tensor_parallel_size=0).validate()
    with pytest.raises(ValueError, match="data_parallel_size >= 0"):
        RolloutConfig(data_parallel_size=-1).validate()
    RolloutConfig(tensor_parallel_size=2, data_parallel_size=4).validate()


def test_ranks_of_one_data_parallel_rank_share_the_lowest_as_holder():
    assert first_holders([0, 1, 2, 3]) == [0, 1, 2, 3]  # FSDP: every rank its own prompts
    assert first_holders([0, 0, 1, 1]) == [0, 0, 2, 2]  # Megatron TP=2: pairs share
    assert first_holders([0, 1, 0, 1]) == [0, 1, 0, 1]  # pipeline stages outermost


def test_work_is_split_evenly_in_order_and_each_shared_list_once():
    # Megatron TP=2 on 4 ranks (dp ranks 0,0,1,1) with 3 prompts each, rollout TP=1: 4 engines for 6 prompts
    plan = plan_work([3, 3, 3, 3], first_holders([0, 0, 1, 1]), groups=4)
    assert plan == [[(0, 0), (0, 1)], [(0, 2), (2, 0)], [(2, 1)], [(2, 2)]]
    # ranks with no prompts and more groups than work
    assert plan_work([0, 1], [0, 1], groups=3) == [[(1, 0)], [], []]
    # one rollout group of 2 (TP=2) over two FSDP ranks: the group runs both ranks' prompts
    assert plan_work([2, 1], [0, 1], groups=1) == [[(0, 0), (0, 1), (1, 0)]]


def test_assemble_returns_each_owner_its_results_in_its_order():
    plan = plan_work([3, 3, 3, 3], first_holders([0, 0, 1, 1]), groups=4)
    results = [[f"{r}.{j}" for r, j in items] for items in plan]
    assert assemble(plan, results, owner=0, count=3) == ["0.0", "0.1", "0.2"]
    assert assemble(plan, results, owner=2, count=3) == ["2.0", "2.1", "2.2"]
    assert assemble(plan_work([0, 1], [0, 1], groups=3), [["x"], None, None], owner=0, count=0) == []


def test_seeds_depend_only_on_the_owner_seed_and_position():
    assert request_seeds(5, 3) == [(5 * 1_000_003 + i) % 2**31 for i in range(3)]
    assert request_seeds(5, 3)[:2] == request_seeds(5, 2)
