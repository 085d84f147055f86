"""Rewards for trajectories and the reward metrics of a step (overall, per component, per problem type)."""

from __future__ import annotations

from collections import defaultdict

from vrl.batch import Trajectory
from vrl.rewards import RewardConfig, canonical_type, score_batch


def score_trajectories(trajs: list[Trajectory], cfg: RewardConfig) -> None:
    """Fill ``rewards`` of every trajectory that has none yet (per-sample routing by problem type)."""
    todo = [t for t in trajs if not t.rewards]
    if not todo:
        return
    results = score_batch([t.prompt.record for t in todo], [t.response_text for t in todo], cfg)
    for traj, result in zip(todo, results):
        traj.rewards = {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def reward_metrics(trajs: list[Trajectory], prefix: str = "reward") -> dict[str, float]:
    """``reward/<key>`` means over all trajectories, ``reward/<type>/<key>`` per problem type."""
    by_key: dict[str, list[float]] = defaultdict(list)
    by_type: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t in trajs:
        ptype = canonical_type(t.prompt.record["problem_type"]).replace(" ", "_")
        for k, v in t.rewards.items():
            by_key[k].append(v)
            by_type[ptype][k].append(v)
    out = {f"{prefix}/{k}": _mean(v) for k, v in by_key.items()}
    for ptype, keys in by_type.items():
        for k in ("overall", "accuracy"):
            if k in keys:
                out[f"{prefix}/{ptype}/{k}"] = _mean(keys[k])
    return out


def response_metrics(trajs: list[Trajectory]) -> dict[str, float]:
    online = [t for t in trajs if not t.offpolicy]
    lengths = [t.response_len for t in online] or [0]
    return {
        "response/length_mean": _mean([float(x) for x in lengths]),
        "response/length_max": float(max(lengths)),
        "response/truncated_frac": _mean([float(t.truncated) for t in online]),
        "response/empty_frac": _mean([float(not t.response_text.strip()) for t in online]),
    }
