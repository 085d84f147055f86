"""ReMax's greedy baseline in the rollout phase: one greedy generation per prompt, scored, attached to every
trajectory of the prompt's group (offline ones included), and nothing of the kind without it."""

from __future__ import annotations

import torch

from vrl.batch import Prompt, Trajectory
from vrl.distributed import init_distributed
from vrl.rewards import RewardConfig
from vrl.rollout.base import Completion, RolloutEngine, SamplingParams
from vrl.trainer.collect import collect
from vrl.trainer.mixing import MixConfig


class GreedyAwareRollout(RolloutEngine):
    """Sampled responses follow the record's script; the greedy one (temperature 0) is its ``greedy``."""

    def __init__(self) -> None:
        self.calls: list[SamplingParams] = []

    def generate(self, prompts, params, seed):
        self.calls.append(params)
        if params.greedy:
            return [
                [Completion(token_ids=[1, 2, 3], text=p.record["greedy"], truncated=False)] for p in prompts
            ]
        return [
            [
                Completion(token_ids=[1, 2], text=p.record["script"][i % 2], truncated=False)
                for i in range(params.n)
            ]
            for p in prompts
        ]

    def update_weights(self, weights):
        pass


def prompt(i: int, greedy: str) -> Prompt:
    record = {
        "problem_id": str(i),
        "problem_type": "boolean",
        "solution": "<answer>yes</answer>",
        "script": ["<answer>yes</answer>", "<answer>no</answer>"],
        "greedy": greedy,
        "offline_output": "<answer>yes</answer>",
    }
    return Prompt(record=record, input_ids=torch.tensor([5, 6]), vision={}, text="")


def offline(p: Prompt) -> Trajectory:
    return Trajectory(
        prompt=p, response_ids=torch.tensor([7]), response_text="<answer>yes</answer>", offpolicy=True
    )


def run(greedy_baseline: bool, mix: MixConfig | None = None):
    rollout = GreedyAwareRollout()
    prompts = [prompt(0, "<answer>yes</answer>"), prompt(1, "<answer>no</answer>")]
    res = collect(
        lambda: prompts,
        rollout,
        SamplingParams(n=4, temperature=1.0, max_tokens=7),
        lambda r: r,
        RewardConfig(),
        mix or MixConfig(enable=False),
        offline,
        init_distributed(),
        groups_per_rank=2,
        dynamic_sampling=False,
        max_rounds=0,
        greedy_baseline=greedy_baseline,
    )
    return res, rollout


def test_one_scored_greedy_response_per_prompt_shared_by_its_group():
    res, rollout = run(greedy_baseline=True)
    assert [(c.n, c.temperature) for c in rollout.calls] == [(4, 1.0), (1, 0.0)]
    assert rollout.calls[1].max_tokens == 7
    for group, expected in zip(res.groups, (1.0, 0.0)):
        baselines = {id(t.baseline) for t in group}
        assert len(baselines) == 1 and group[0].baseline is not None
        assert group[0].baseline.prompt is group[0].prompt
        assert group[0].baseline.rewards["accuracy"] == expected
        assert group[0].baseline.response_len == 3
    assert res.generated == 8  # the greedy responses are baselines, not training samples


def test_offline_trajectories_mixed_in_get_the_baseline_too():
    res, _ = run(
        greedy_baseline=True, mix=MixConfig(enable=True, num_offline_per_group=1, accuracy_threshold=-1)
    )
    for group in res.groups:
        assert any(t.offpolicy for t in group)
        assert all(t.baseline is group[0].baseline is not None for t in group)


def test_no_greedy_generation_without_remax():
    res, rollout = run(greedy_baseline=False)
    assert len(rollout.calls) == 1
    assert all(t.baseline is None for g in res.groups for t in g)
