"""Number answers: numerical (equal after rounding to 2 decimals), regression (MRA), counts (exact).

Numbers are read by :mod:`vrl.rewards.numbers`: units, scientific notation, separators and LaTeX are
understood, and a percentage has two readings (``45%`` is 45 or 0.45). An answer matches when any of its
readings matches any reading of the gold; regression scores the best MRA over the reading pairs.
"""

from __future__ import annotations

from fractions import Fraction

from vrl.rewards.extract import ground_truth
from vrl.rewards.numbers import parse_readings, round2
from vrl.rewards.registry import Verdict, register_reward

#: VSI-Bench confidence thresholds θ ∈ {0.50, 0.55, …, 0.95}, exact
MRA_THRESHOLDS = tuple(Fraction(50 + 5 * k, 100) for k in range(10))


def _truth_readings(sample: dict) -> tuple[Fraction, ...]:
    truth = ground_truth(sample)
    readings = parse_readings(truth)
    if not readings:
        raise ValueError(f"{sample.get('problem_type')!r} solution {truth!r} is not a single number.")
    return readings


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
    golds = _truth_readings(sample)
    preds = parse_readings(answer)
    if not preds:
        return Verdict(0.0, parsed=False)
    return Verdict(float(any(round2(p) == round2(g) for p in preds for g in golds)))


@register_reward(
    "regression",
    answer_format="a single number",
    example="3.2",
)
def regression(answer: str, sample: dict, config: object) -> Verdict:
    golds = _truth_readings(sample)
    preds = parse_readings(answer)
    if not preds:
        return Verdict(0.0, parsed=False)
    return Verdict(max(mean_relative_accuracy(p, g) for p in preds for g in golds))


@register_reward(
    "REC",
    aliases=("count", "counting"),
    answer_format="a single whole number",
    example="3",
)
def count(answer: str, sample: dict, config: object) -> Verdict:
    """OVO-Bench REC (repetition counting): exact integer match."""
    golds = [g for g in _truth_readings(sample) if g.denominator == 1]
    if not golds:
        raise ValueError(f"Count solution {ground_truth(sample)!r} is not a whole number.")
    preds = [p for p in parse_readings(answer) or () if p.denominator == 1]
    if not preds:
        return Verdict(0.0, parsed=False)
    return Verdict(float(any(p == g for p in preds for g in golds)))
