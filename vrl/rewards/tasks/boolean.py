"""Yes/no answers: yes/true/1 ↔ yes, no/false/0 ↔ no.

An answer is yes/no when, ignoring case, markdown, quotes and surrounding punctuation, it is

- exactly one of yes/no/true/false/1/0 ("**Yes**", "no."), or
- a leading yes/no/true/false closed by punctuation and followed by an explanation
  ("Yes, the man is running.", "No. He walks.", "Yes - it is"); the leading word decides, or
- stated after an answer marker ("The answer is yes", "Answer: no").

A leading word followed directly by another word is not an answer: "no idea", "no one is there",
"yes it is" read as no answer (a word after yes/no without a break is ambiguous).
"""

from __future__ import annotations

import re

from vrl.rewards.extract import ground_truth, strip_math_delimiters
from vrl.rewards.registry import Verdict, register_reward

_VALUES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
_EDGE = " \t\r\n*_`'\".,:;!?()[]{}"
# leading word, then a break: punctuation (a hyphen/dash only with a space before it) or a line end
_LEADING = re.compile(r"(yes|no|true|false)[*_`'\"]*+[ \t]*+(?:[,.;:!?\n]|[-–—]\s)", re.IGNORECASE)
_MARKED = re.compile(
    r"\banswer\b[\s*_]*+(?:(?:is|would\s++be|should\s++be)\b[\s*_]*+)?+(?:[:：][\s*_]*+)?+[`'\"]*+"
    r"(yes|no|true|false)[*_`'\"]*+\s*+(?:[^\w\s]|$)",
    re.IGNORECASE,
)


def parse_bool(text: str) -> bool | None:
    """True/False for a yes/no answer (see the module docstring), else None."""
    if len(text) > 4096:
        return None
    bare = strip_math_delimiters(text).strip(_EDGE)
    if len(bare) <= 64:
        value = _VALUES.get(bare.casefold())
        if value is not None:
            return value
    head = bare.lstrip(_EDGE)
    m = _LEADING.match(head)
    if m is not None:
        return _VALUES[m.group(1).casefold()]
    found = {_VALUES[m.group(1).casefold()] for m in _MARKED.finditer(bare + " .")}
    return found.pop() if len(found) == 1 else None


def _judge(answer: str, sample: dict) -> Verdict:
    truth = ground_truth(sample)
    gold = parse_bool(truth)
    if gold is None:
        raise ValueError(f"{sample.get('problem_type')!r} solution {truth!r} is not yes/no.")
    pred = parse_bool(answer)
    return Verdict(float(pred is not None and pred == gold), parsed=pred is not None)


@register_reward(
    "boolean",
    aliases=("yes/no", "yes-no", "bool", "judge", "binary classification", "binary"),
    answer_format="yes or no",
    example="yes",
)
def boolean(answer: str, sample: dict, config: object) -> Verdict:
    return _judge(answer, sample)


@register_reward("SSR", answer_format="yes or no", example="yes")
def ovo_ssr(answer: str, sample: dict, config: object) -> Verdict:
    """OVO-Bench sequential steps recognition: a yes/no question."""
    return _judge(answer, sample)


@register_reward("CRR", answer_format="yes or no", example="no")
def ovo_crr(answer: str, sample: dict, config: object) -> Verdict:
    """OVO-Bench clues reveal response: a yes/no question."""
    return _judge(answer, sample)
