"""Yes/no answers: yes/true/1 ↔ yes, no/false/0 ↔ no; the whole answer must be one of them."""

from __future__ import annotations

from vrl.rewards.extract import ground_truth, strip_math_delimiters
from vrl.rewards.registry import Verdict, register_reward

_VALUES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
_EDGE = " \t\r\n*_`'\".,:;!?()[]{}"


def parse_bool(text: str) -> bool | None:
    """True/False for a yes/no answer (case, surrounding punctuation and markdown ignored), else None."""
    if len(text) > 64:
        return None
    return _VALUES.get(strip_math_delimiters(text).strip(_EDGE).casefold())


def _judge(answer: str, sample: dict) -> Verdict:
    truth = ground_truth(sample)
    gold = parse_bool(truth)
    if gold is None:
        raise ValueError(f"{sample.get('problem_type')!r} solution {truth!r} is not yes/no.")
    pred = parse_bool(answer)
    return Verdict(float(pred is not None and pred == gold), parsed=pred is not None)


@register_reward(
    "boolean",
    aliases=("yes/no", "yes-no", "bool", "judge"),
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
