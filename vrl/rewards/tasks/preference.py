"""Pairwise preference (LLaVA-Critic): which response is better, or a tie.

"Response 1 / A / first" → 1, "Response 2 / B / second" → 2, "tie / equal / both" → 0. An answer naming
two different labels ("Response 1 is better than Response 2") reads as no label.
"""

from __future__ import annotations

import re

from vrl.rewards.extract import ground_truth
from vrl.rewards.registry import Verdict, register_reward

_EDGE = " \t\r\n*_`'\".,:;!?()[]{}"
_WHOLE = {
    "1": 1,
    "a": 1,
    "first": 1,
    "response 1": 1,
    "response a": 1,
    "2": 2,
    "b": 2,
    "second": 2,
    "response 2": 2,
    "response b": 2,
    "tie": 0,
    "equal": 0,
    "both": 0,
}
_MENTIONS = (
    (re.compile(r"\bresponse\s*(?:1|a|one)\b|\b(?:the\s+)?first\b"), 1),
    (re.compile(r"\bresponse\s*(?:2|b|two)\b|\b(?:the\s+)?second\b"), 2),
    (re.compile(r"\btie\b|\bequal(?:ly)?\b|\bboth\b|\bsame\b"), 0),
)


def parse_preference(text: str) -> int | None:
    """1, 2 or 0 (tie) for a preference answer, else None."""
    if len(text) > 4096:
        return None
    norm = " ".join(text.strip(_EDGE).casefold().split())
    if norm in _WHOLE:
        return _WHOLE[norm]
    found = {label for pattern, label in _MENTIONS if pattern.search(norm)}
    return found.pop() if len(found) == 1 else None


@register_reward(
    "llava",
    aliases=("critic", "llava-critic", "preference", "pairwise"),
    answer_format='"Response 1", "Response 2" or "Tie"',
    example="Response 1",
)
def preference(answer: str, sample: dict, config: object) -> Verdict:
    truth = ground_truth(sample)
    gold = parse_preference(truth)
    if gold is None:
        raise ValueError(f"Preference label {truth!r} is not Response 1 / Response 2 / Tie.")
    pred = parse_preference(answer)
    return Verdict(float(pred is not None and pred == gold), parsed=pred is not None)
