"""The rollout phase: groups of n, offline mixing, DAPO dynamic sampling with refill rounds."""

from __future__ import annotations

import itertools

import torch

from vrl.batch import Prompt, Trajectory
from vrl.distributed import init_distributed
from vrl.rewards import RewardConfig
from vrl.rollout.base import Completion, RolloutEngine, SamplingParams
from vrl.trainer.collect import collect
from vrl.trainer.mixing import MixConfig


class ScriptedRollout(RolloutEngine):
    """Answers each prompt with the responses scripted in its record (a test double for the engine)."""

    def generate(self, prompts, params, seed):
        return [
            [Completion(token_ids=[1, 2], text=p.record["script"][i % len(p.record["script"])], truncated=False)
             for i in range(params.n)]
            for p in prompts
        ]  # fmt: skip

    def update_weights(self, weights):
        pass


def prompt(i: int, script: list[str]) -> Prompt:
    record = {
        "problem_id": str(i),
        "problem_type": "boolean",
        "solution": "<answer>yes</answer>",
        "script": script,
    }
    record["offline_output"] = "<think>it is</think><answer>yes</answer>"
    return Prompt(record=record, input_ids=torch.tensor([5, 6]), vision={}, text="")


MIXED = ["<answer>yes</answer>", "<answer>no</answer>"]
ALL_WRONG = ["<answer>no</answer>"]


def offline(p: Prompt) -> Trajectory:
    return Trajectory(
        prompt=p, response_ids=torch.tensor([7]), response_text=p.record["offline_output"], offpolicy=True
    )


def run(prompts_per_round, n=4, mix=None, dynamic=False, max_rounds=0, groups=2):
    stream = iter(prompts_per_round)
    return collect(
        lambda: next(stream),
        ScriptedRollout(),
        SamplingParams(n=n, max_tokens=4),
        lambda r: r,
        RewardConfig(),
        mix or MixConfig(enable=False),
        offline,
        init_distributed(),
        groups_per_rank=groups,
        dynamic_sampling=dynamic,
        max_rounds=max_rounds,
    )


def test_groups_are_scored_and_numbered():
    res = run([[prompt(0, MIXED), prompt(1, ALL_WRONG)]])
    assert [len(g) for g in res.groups] == [4, 4]
    assert {t.group for t in res.groups[0]} == {0} and {t.group for t in res.groups[1]} == {1}
    assert [t.rewards["accuracy"] for t in res.groups[0]] == [1.0, 0.0, 1.0, 0.0]


def test_dynamic_sampling_drops_flat_groups_and_refills():
    rounds = [[prompt(0, ALL_WRONG), prompt(1, MIXED)], [prompt(2, ALL_WRONG), prompt(3, MIXED)]]
    res = run(rounds, dynamic=True)
    assert res.rounds == 2 and res.groups_dropped == 2
    assert [g[0].prompt.record["problem_id"] for g in res.groups] == ["1", "3"]


def test_dynamic_sampling_stops_after_max_rounds_and_keeps_one_group():
    rounds = itertools.repeat([prompt(0, ALL_WRONG), prompt(1, ALL_WRONG)])
    res = run(rounds, dynamic=True, max_rounds=3)
    assert res.rounds == 3 and res.groups_dropped == 6
    assert len(res.groups) == 1  # an uninformative group, so this rank still joins the update


def test_offline_mixing_rescues_all_wrong_groups_from_dynamic_sampling():
    res = run(
        [[prompt(0, ALL_WRONG), prompt(1, ALL_WRONG)]],
        n=4,
        mix=MixConfig(num_offline_per_group=1),
        dynamic=True,
    )
    assert res.groups_dropped == 0 and [len(g) for g in res.groups] == [4, 4]
    assert all(g[-1].offpolicy and g[-1].rewards["accuracy"] == 1.0 for g in res.groups)
    assert res.mix.metrics()["mix/groups_with_offline"] == 2
    assert res.mix.metrics()["mix/offline_reward_mean"] == 1.0
