"""Validation: greedy answers on held-out records, scored by the training reward, per problem type.

Reports mean accuracy per problem type plus the headline of the toy run: accuracy on the
multiple-choice and boolean records next to its chance level (1/#options, 1/2), and per task family
(the record's ``task``, e.g. the toy suite's ``color``): ``val/family/<task>`` with its chance level
``val/family_chance/<task>`` (the mean of the records' chance levels; 0 where guessing cannot score).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vrl.batch import Prompt, Trajectory
from vrl.distributed import DistContext
from vrl.rewards import RewardConfig, canonical_type
from vrl.rollout.base import RolloutEngine, SamplingParams
from vrl.trainer.scoring import score_trajectories

HEADLINE_TYPES = ("multiple choice", "boolean")


def chance(record: dict[str, Any]) -> float:
    ptype = canonical_type(record["problem_type"])
    if ptype == "multiple choice":
        return 1.0 / max(1, len(record.get("options") or []))
    if ptype == "boolean":
        return 0.5
    return 0.0


def validate(
    mine: list[Prompt],
    problem_types: list[str],
    rollout: RolloutEngine,
    reward_cfg: RewardConfig,
    params: SamplingParams,
    seed: int,
    dist_ctx: DistContext,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics over all ranks' shares and the per-record rows of this rank's share ``mine``.

    ``problem_types`` lists the types of the whole validation set (the same on every rank)."""
    outputs = rollout.generate(mine, params, seed=seed)  # collective where ranks share rollout engines
    trajs = []
    for prompt, comps in zip(mine, outputs):
        c = comps[0]
        trajs.append(
            Trajectory(
                prompt=prompt, response_ids=_ids(c.token_ids), response_text=c.text, truncated=c.truncated
            )
        )
    score_trajectories(trajs, reward_cfg)
    rows = [
        {
            "problem_id": t.prompt.record.get("problem_id"),
            "problem_type": canonical_type(t.prompt.record["problem_type"]),
            "task": t.prompt.record.get("task", ""),
            "accuracy": t.rewards.get("accuracy", 0.0),
            "format": t.rewards.get("format", 0.0),
            "response": t.response_text[:200],
            "solution": str(t.prompt.record.get("solution", ""))[:200],
        }
        for t in trajs
    ]
    sums: dict[str, float] = defaultdict(float)
    for t in trajs:
        ptype = canonical_type(t.prompt.record["problem_type"])
        key = ptype.replace(" ", "_")
        acc = t.rewards.get("accuracy", 0.0)
        sums["n"] += 1
        sums["acc"] += acc
        sums["format"] += t.rewards.get("format", 0.0)
        sums[f"n/{key}"] += 1
        sums[f"acc/{key}"] += acc
        task = _task(t.prompt.record)
        sums[f"n/task/{task}"] += 1
        sums[f"acc/task/{task}"] += acc
        sums[f"chance/task/{task}"] += chance(t.prompt.record)
        if ptype in HEADLINE_TYPES:
            sums["n/headline"] += 1
            sums["acc/headline"] += acc
            sums["chance/headline"] += chance(t.prompt.record)
    types = sorted({canonical_type(t).replace(" ", "_") for t in problem_types})
    keys = ["n", "acc", "format", "n/headline", "acc/headline", "chance/headline"]
    keys += [f"{k}/{t}" for t in types for k in ("n", "acc")]  # the same keys on every rank
    tasks = sorted(set(dist_ctx.gather_list(sorted({_task(p.record) for p in mine}))))
    keys += [f"{k}/task/{t}" for t in tasks for k in ("n", "acc", "chance")]
    # model-parallel peers hold the same share: sum over all ranks, divide by the peers per replica
    totals = dist_ctx.all_reduce_sum_dict({k: sums.get(k, 0.0) for k in keys})
    replicas = dist_ctx.world_size // dist_ctx.dp_size
    totals = {k: v / replicas for k, v in totals.items()}
    return _metrics(totals), rows


def _metrics(totals: dict[str, float]) -> dict[str, float]:
    n = max(1.0, totals["n"])
    out = {
        "val/accuracy": totals["acc"] / n,
        "val/format": totals["format"] / n,
        "val/num_records": totals["n"],
    }
    for key, value in totals.items():
        if key.startswith("acc/task/"):
            task = key[len("acc/task/") :]
            n_task = max(1.0, totals[f"n/task/{task}"])
            out[f"val/family/{task}"] = value / n_task
            out[f"val/family_chance/{task}"] = totals[f"chance/task/{task}"] / n_task
        elif key.startswith("acc/") and key != "acc/headline":
            ptype = key[4:]
            out[f"val/accuracy/{ptype}"] = value / max(1.0, totals[f"n/{ptype}"])
    nh = totals["n/headline"]
    if nh:
        out["val/acc_mc_bool"] = totals["acc/headline"] / nh
        out["val/chance_mc_bool"] = totals["chance/headline"] / nh
    return out


def _task(record: dict[str, Any]) -> str:
    """The record's task family (``task``), ``other`` when it names none; no ``/`` (a metric key level)."""
    return str(record.get("task") or "other").replace("/", "_").replace(" ", "_")


def _ids(tokens: list[int]):
    import torch

    return torch.tensor(tokens, dtype=torch.long)
