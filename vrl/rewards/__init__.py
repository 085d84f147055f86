"""Task-aware rewards: one registry of problem types, per-sample routing, bounded and fuzzed.

The trainer and the eval harness both score with :func:`score` / :func:`score_batch`, so training
rewards and evaluation metrics are the same code. See ``python -m vrl.rewards score --help``.
"""

from vrl.rewards.config import RewardConfig
from vrl.rewards.extract import extract_answer, ground_truth
from vrl.rewards.instructions import answer_instruction
from vrl.rewards.registry import (
    Verdict,
    canonical_type,
    get_type,
    known_types,
    load_extra_modules,
    register_reward,
    unregister_reward,
)
from vrl.rewards.scoring import score, score_batch

__all__ = [
    "RewardConfig",
    "Verdict",
    "answer_instruction",
    "canonical_type",
    "extract_answer",
    "get_type",
    "ground_truth",
    "known_types",
    "load_extra_modules",
    "register_reward",
    "score",
    "score_batch",
    "unregister_reward",
]
