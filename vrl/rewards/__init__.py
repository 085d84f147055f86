"""Task-aware rewards: one registry of problem types, per-sample routing, bounded and fuzzed.

The trainer and the eval harness both score with :func:`score` / :func:`score_batch`, so training rewards
and evaluation metrics are the same code::

    from vrl.rewards import RewardConfig, score, score_batch, answer_instruction

    sample = {"problem_type": "multiple choice", "solution": "<answer>B</answer>", "options": ["A. x", "B. y"]}
    score(sample, "<think>…</think><answer>B</answer>")  # {"overall": 1.0, "format": 1.0, "accuracy": 1.0}
    answer_instruction("multiple choice", "think")  # the prompt text asking for what the reward parses

``overall = accuracy_weight · accuracy + format_weight · format`` (0.9 / 0.1). The reasoning (everything
up to the last ``</think>``) never supplies the answer; after it, the answer is the last
``<answer>…</answer>``, else the last ``\\boxed{}``, else the text (:mod:`vrl.rewards.extract`). ``format``
is 1.0 (tag, parses), 0.5 (tag, does not parse) or 0.0 (no tag, or no ``<think>`` block when
``require_think``). Types and their aliases: ``known_types()`` (every ``problem_type`` EasyVideoR1 routes is
an alias); an unknown type raises ``ValueError`` listing them.

A user type lives in the user's module and is named in the config (``reward.extra_modules=[mypkg.rewards]``)::

    from vrl.rewards import Verdict, register_reward

    @register_reward("word count", aliases=("wc",), answer_format="a whole number", example="12")
    def word_count(answer: str, sample: dict, config) -> Verdict:
        gold = len(sample["solution"].split())
        return Verdict(float(answer.strip() == str(gold)), parsed=answer.strip().isdigit())

CLI: ``python -m vrl.rewards score INPUT.jsonl [OUTPUT.jsonl] [key=value ...]``; benchmark:
``python -m vrl.rewards.benchmark``.
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
