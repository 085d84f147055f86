"""Cost-balanced, deterministic slicing of the (benchmark, sample) list."""

from __future__ import annotations

import pytest

from eval_harness.records import BENCH, KEY
from eval_harness.shard import balance, plan_tasks, sample_cost, video_seconds
from vrl.data.config import VideoBudget
from vrl.data.media import ROOT_KEY


def _rec(key, bench="videomme", **fields):
    return {
        KEY: key,
        BENCH: bench,
        "path": f"{key}.mp4",
        ROOT_KEY: "/nonexistent",
        "problem_id": key,
        **fields,
    }


def test_balance_is_deterministic_partition_and_balanced():
    costs = [float((i * 37) % 11 + 1) for i in range(200)]
    samples = [("b", str(i)) for i in range(200)]
    slices = balance(samples, costs, 7)
    assert slices == balance(samples, costs, 7)
    assert sorted(i for s in slices for i in s) == list(range(200))
    loads = [sum(costs[i] for i in s) for s in slices]
    assert max(loads) - min(loads) <= max(costs)  # greedy longest-first: within one sample's cost
    assert all(s == sorted(s) for s in slices)


def test_one_long_video_gets_its_own_shard():
    costs = [100.0] + [1.0] * 100
    slices = balance([("b", str(i)) for i in range(101)], costs, 2)
    assert [0] in slices


def test_costs_follow_video_length_under_the_frame_budget(tmp_path):
    budget = VideoBudget(fps=2.0, min_frames=4, max_frames=32)
    short, long = _rec("a", duration="short"), _rec("b", duration="long")
    assert video_seconds(short) < video_seconds(long)
    assert sample_cost(short, budget) < sample_cost(long, budget)
    (tmp_path / "c.mp4").write_bytes(b"x" * 125_000 * 30)  # ~30 s at the assumed bitrate
    sized = {**_rec("c", bench="lvbench"), ROOT_KEY: str(tmp_path)}
    assert video_seconds(sized) == pytest.approx(30.0)
    assert video_seconds(_rec("d", bench="lvbench")) == 0.0  # missing: fails fast
    assert sample_cost({**_rec("e"), "path": "x.png"}, budget) < sample_cost(short, budget)


def test_plan_tasks_is_json_and_skips_empty_shards():
    records = [_rec(str(i), duration=("short", "medium", "long")[i % 3]) for i in range(5)]
    tasks = plan_tasks(records, 8, VideoBudget())
    assert len(tasks) == 5 and all(len(t["samples"]) == 1 for t in tasks)
    assert {t["num_shards"] for t in tasks} == {8}
    assert sorted(s[1] for t in tasks for s in t["samples"]) == [str(i) for i in range(5)]
    assert plan_tasks([], 3, VideoBudget()) == []
