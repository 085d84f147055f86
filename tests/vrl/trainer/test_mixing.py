"""Offline/online mixing: slot counts, the accuracy threshold, missing offline outputs, statistics."""

from __future__ import annotations

import torch

from vrl.batch import Prompt, Trajectory
from vrl.trainer.mixing import MixConfig, mix_groups, online_samples_per_group


def prompt(offline: str | None) -> Prompt:
    record = {"problem_type": "boolean", "solution": "<answer>yes</answer>"}
    if offline is not None:
        record["offline_output"] = offline
    return Prompt(record=record, input_ids=torch.tensor([1, 2]), vision={}, text="")


def group(p: Prompt, accs: list[float], gid: int) -> list[Trajectory]:
    return [
        Trajectory(
            prompt=p, response_ids=torch.tensor([3]), response_text="x", group=gid, rewards={"accuracy": a}
        )
        for a in accs
    ]


def make_offline(p: Prompt) -> Trajectory | None:
    text = p.record.get("offline_output")
    if text is None:
        return None
    return Trajectory(prompt=p, response_ids=torch.tensor([4, 5]), response_text=text, offpolicy=True)


def acc(t: Trajectory) -> float:
    return t.rewards.get("accuracy", 0.0)


def test_always_mode_samples_n_minus_k_and_appends_k():
    cfg = MixConfig(num_offline_per_group=2)
    assert online_samples_per_group(cfg, 8) == 6
    groups = [
        group(prompt("<answer>yes</answer>"), [0.0] * 6, 0),
        group(prompt("<answer>no</answer>"), [1.0] * 6, 1),
    ]
    stats = mix_groups(cfg, groups, make_offline, acc, n=8)
    assert [len(g) for g in groups] == [8, 8]
    assert [sum(t.offpolicy for t in g) for g in groups] == [2, 2]
    assert all(t.group == g[0].group for g in groups for t in g)
    assert stats.metrics()["mix/groups_with_offline"] == 2


def test_threshold_replaces_only_in_failing_groups():
    cfg = MixConfig(num_offline_per_group=1, accuracy_threshold=0.5)
    assert online_samples_per_group(cfg, 4) == 4
    failing = group(prompt("<answer>yes</answer>"), [0.0, 0.0, 1.0, 0.0], 0)
    passing = group(prompt("<answer>yes</answer>"), [1.0, 1.0, 0.0, 1.0], 1)
    stats = mix_groups(cfg, [failing, passing], make_offline, acc, n=4)
    assert len(failing) == 4 and failing[-1].offpolicy and not any(t.offpolicy for t in failing[:-1])
    assert not any(t.offpolicy for t in passing)
    assert stats.groups_with_offline == 1


def test_records_without_offline_output_are_counted_not_mixed():
    cfg = MixConfig(num_offline_per_group=1)
    groups = [group(prompt(None), [0.0] * 3, 0)]
    stats = mix_groups(cfg, groups, make_offline, acc, n=4)
    assert len(groups[0]) == 3
    assert stats.metrics()["mix/groups_missing_offline"] == 1


def test_disabled_mixing_changes_nothing():
    cfg = MixConfig(enable=False, num_offline_per_group=2)
    assert online_samples_per_group(cfg, 8) == 8
    groups = [group(prompt("<answer>yes</answer>"), [0.0] * 8, 0)]
    mix_groups(cfg, groups, make_offline, acc, n=8)
    assert len(groups[0]) == 8 and not any(t.offpolicy for t in groups[0])
