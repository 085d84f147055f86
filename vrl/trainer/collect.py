"""The rollout phase of a step: prompts → groups of scored trajectories (mixing, dynamic sampling).

One round samples ``n`` (or ``n - k`` with always-on mixing) responses per prompt, scores them, mixes
offline trajectories in and, with DAPO dynamic sampling, drops groups whose rewards are all equal. With
``greedy_baseline`` (ReMax) it also generates one greedy response per prompt, scores it and attaches it to
every trajectory of the prompt's group as ``Trajectory.baseline``. Each sampled trajectory keeps the
engine's log-probs of its tokens (``Trajectory.rollout_logp``) for rollout correction.
Rounds repeat until every rank holds its share of groups or the round budget is spent; ranks decide
together so collective calls stay matched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vrl.batch import Prompt, Trajectory
from vrl.distributed import DistContext
from vrl.rewards import RewardConfig
from vrl.rollout.base import Completion, RolloutEngine, SamplingParams
from vrl.trainer.mixing import MixConfig, MixStats, mix_groups, online_samples_per_group
from vrl.trainer.scoring import score_trajectories


@dataclass
class CollectResult:
    groups: list[list[Trajectory]]
    rounds: int = 0
    groups_dropped: int = 0
    mix: MixStats = field(default_factory=MixStats)
    generated: int = 0
    reward_seconds: float = 0.0


def _trajectories(prompt: Prompt, completions: list[Completion], group: int) -> list[Trajectory]:
    return [
        Trajectory(
            prompt=prompt,
            response_ids=torch.tensor(c.token_ids, dtype=torch.long),
            response_text=c.text,
            truncated=c.truncated,
            group=group,
            rollout_logp=_rollout_logp(c),
        )
        for c in completions
    ]


def _rollout_logp(completion: Completion) -> torch.Tensor | None:
    """(R,) the engine's log-probs of the response tokens, for rollout correction; None if it gave none."""
    if completion.logprobs is None:
        return None
    if len(completion.logprobs) != len(completion.token_ids):
        raise RuntimeError(
            f"the rollout engine returned {len(completion.logprobs)} log-probs for "
            f"{len(completion.token_ids)} response tokens"
        )
    return torch.tensor(completion.logprobs, dtype=torch.float32)


def _all_equal(group: list[Trajectory]) -> bool:
    values = [t.rewards.get("overall", 0.0) for t in group]
    return max(values) - min(values) < 1e-9


def collect(
    next_prompts: Callable[[], list[Prompt]],
    rollout: RolloutEngine,
    params: SamplingParams,
    seed_for_round: Callable[[int], int],
    reward_cfg: RewardConfig,
    mix_cfg: MixConfig,
    make_offline: Callable[[Prompt], Trajectory | None],
    dist_ctx: DistContext,
    *,
    groups_per_rank: int,
    dynamic_sampling: bool,
    max_rounds: int,
    greedy_baseline: bool = False,
) -> CollectResult:
    import time

    result = CollectResult(groups=[])
    n = params.n
    online = SamplingParams(**{**params.__dict__, "n": online_samples_per_group(mix_cfg, n)})
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=params.max_tokens)
    next_group = 0
    last_dropped: list[Trajectory] | None = None
    while True:
        prompts = next_prompts()
        # every rank calls generate, even with no prompts: it is collective where ranks share rollout engines
        completions = rollout.generate(prompts, online, seed=seed_for_round(result.rounds))
        baselines = []
        if greedy_baseline:
            outputs = rollout.generate(prompts, greedy, seed=seed_for_round(result.rounds))
            baselines = [_trajectories(p, comps[:1], -1)[0] for p, comps in zip(prompts, outputs)]
        result.rounds += 1
        groups = []
        for prompt, comps in zip(prompts, completions):
            groups.append(_trajectories(prompt, comps, next_group))
            next_group += 1
        result.generated += sum(len(g) for g in groups)
        t0 = time.perf_counter()
        score_trajectories([t for g in groups for t in g], reward_cfg)
        stats = mix_groups(mix_cfg, groups, make_offline, lambda t: t.rewards.get("accuracy", 0.0), n)
        score_trajectories([t for g in groups for t in g] + baselines, reward_cfg)
        for group, baseline in zip(groups, baselines):
            for t in group:
                t.baseline = baseline
        stats.offline_rewards = [t.rewards.get("overall", 0.0) for g in groups for t in g if t.offpolicy]
        result.reward_seconds += time.perf_counter() - t0
        _merge_mix(result.mix, stats)
        for group in groups:
            if dynamic_sampling and _all_equal(group):
                result.groups_dropped += 1
                last_dropped = group
            elif len(result.groups) < groups_per_rank:
                result.groups.append(group)
        if not dynamic_sampling:
            break
        have = torch.tensor([len(result.groups)], dtype=torch.long)
        if dist_ctx.world_size > 1:
            torch.distributed.all_reduce(have, op=torch.distributed.ReduceOp.MIN)
        if int(have.item()) >= groups_per_rank or (max_rounds and result.rounds >= max_rounds):
            break
    if not result.groups and last_dropped is not None:
        # every group was uninformative: keep one (its advantages are 0) so this rank still joins the update
        result.groups.append(last_dropped)
    return result


def _merge_mix(total: MixStats, stats: MixStats) -> None:
    total.groups += stats.groups
    total.groups_with_offline += stats.groups_with_offline
    total.groups_missing_offline += stats.groups_missing_offline
    total.offline_rewards = (total.offline_rewards or []) + (stats.offline_rewards or [])
