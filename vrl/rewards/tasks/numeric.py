"""Number answers: numerical (equal after rounding to 2 decimals), regression (MRA), counts (exact)."""

from __future__ import annotations

from fractions import Fraction

from vrl.rewards.extract import ground_truth
from vrl.rewards.numbers import parse_number, round2
from vrl.rewards.registry import Verdict, register_reward

#: VSI-Bench confidence thresholds θ ∈ {0.50, 0.55, …, 0.95}, exact
MRA_THRESHOLDS = tuple(Fraction(50 + 5 * k, 100) for k in range(10))


def _truth_number(sample: dict) -> Fraction:
    truth = ground_truth(sample)
    value = parse_number(truth)
    if value is None:
        raise ValueError(f"{sample.get('problem_type')!r} solution {truth!r} is not a single number.")
    return value


def mean_relative_accuracy(pred: Fraction, gold: Fraction) -> float:
    """MRA = mean over θ of [|p − g| / |g| ≤ 1 − θ] (official VSI-Bench); g = 0 scores 1 only for p = 0."""
    if gold == 0:
        return float(pred == 0)
    error = abs(pred - gold)
    return sum(error <= (1 - t) * abs(gold) for t in MRA_THRESHOLDS) / len(MRA_THRESHOLDS)


@register_reward(
    "numerical",
    aliases=("number", "numeric"),
    answer_format="a single number (digits; a fraction like 3/4 is fine)",
    example="12.5",
)
def numerical(answer: str, sample: dict, config: object) -> Verdict:
    gold = _truth_number(sample)
    pred = parse_number(answer)
    if pred is None:
        return Verdict(0.0, parsed=False)
    return Verdict(float(round2(pred) == round2(gold)))


@register_reward(
    "regression",
    answer_format="a single number",
    example="3.2",
)
def regression(answer: str, sample: dict, config: object) -> Verdict:
    gold = _truth_number(sample)
    pred = parse_number(answer)
    if pred is None:
        return Verdict(0.0, parsed=False)
    return Verdict(mean_relative_accuracy(pred, gold))


@register_reward(
    "REC",
    aliases=("count", "counting"),
    answer_format="a single whole number",
    example="3",
)
def count(answer: str, sample: dict, config: object) -> Verdict:
    """OVO-Bench REC (repetition counting): exact integer match."""
    gold = _truth_number(sample)
    if gold.denominator != 1:
        raise ValueError(f"Count solution {gold} is not a whole number.")
    pred = parse_number(answer)
    if pred is None or pred.denominator != 1:
        return Verdict(0.0, parsed=False)
    return Verdict(float(pred == gold))
