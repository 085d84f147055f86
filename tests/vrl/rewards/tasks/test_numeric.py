"""Numerical (bullet 2), regression / MRA (bullet 3) and OVO-Bench REC counts."""

from fractions import Fraction

import pytest

from vrl.rewards import score
from vrl.rewards.tasks.numeric import mean_relative_accuracy


def acc(problem_type, solution, answer):
    return score({"problem_type": problem_type, "solution": solution}, f"<answer>{answer}</answer>")[
        "accuracy"
    ]


@pytest.mark.parametrize(
    ("solution", "answer", "expected"),
    [
        ("12.97", "12.97", 1.0),
        ("12.97", "12.966", 1.0),  # both round to 12.97
        ("12.97", "12.96", 0.0),
        ("45", "45%", 1.0),
        ("1234", "1,234", 1.0),
        ("0.75", "3/4", 1.0),
        ("25", "twenty-five", 1.0),
        ("3", "three", 1.0),
        ("3", "3 or 4", 0.0),
        ("<answer>$0.5$</answer>", "\\frac{1}{2}", 1.0),
        ("-2", "-2.0", 1.0),
    ],
)
def test_numerical(solution, answer, expected):
    assert acc("numerical", solution, answer) == expected
    assert acc("number", solution, answer) == expected


def test_numerical_unparsable_answer_has_half_format():
    result = score({"problem_type": "numerical", "solution": "5"}, "<answer>many</answer>")
    assert result["accuracy"] == 0.0
    assert result["format"] == 0.5


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        (10, 10, 1.0),
        (15, 10, 0.1),  # |e|/g = 0.5 ≤ 1 − 0.50 only
        (14.5, 10, 0.2),  # 0.45: θ = 0.50, 0.55 (boundary included, exact arithmetic)
        (11, 10, 0.9),  # 0.1 ≤ 1 − θ for θ ≤ 0.90
        (10.5, 10, 1.0),  # 0.05 ≤ 1 − 0.95
        (5, 10, 0.1),
        (20, 10, 0.0),
        (0, 0, 1.0),
        (0.1, 0, 0.0),
        (-10, 10, 0.0),
    ],
)
def test_mean_relative_accuracy(pred, gold, expected):
    assert mean_relative_accuracy(Fraction(str(pred)), Fraction(str(gold))) == pytest.approx(expected)


def test_regression_through_score():
    assert acc("regression", "<answer>4</answer>", "4.1") == pytest.approx(1.0)
    assert acc("regression", "<answer>4</answer>", "5") == pytest.approx(0.6)
    assert acc("regression", "<answer>4</answer>", "none") == 0.0


def test_count_is_exact_integer():
    assert acc("REC", "<answer>3</answer>", "3") == 1.0
    assert acc("REC", "<answer>3</answer>", "three") == 1.0
    assert acc("REC", "<answer>3</answer>", "3.5") == 0.0
    assert acc("REC", "<answer>3</answer>", "4") == 0.0


def test_non_number_truth_is_a_data_error():
    with pytest.raises(ValueError, match="not a single number"):
        acc("numerical", "<answer>many</answer>", "3")


@pytest.mark.parametrize(
    ("solution", "answer", "expected"),
    [
        # the percent rule: "45%" reads 45 or 0.45 and matches a gold written either way
        ("0.45", "45%", 1.0),
        ("45", "45%", 1.0),
        ("45%", "0.45", 1.0),
        ("45%", "45", 1.0),
        ("0.4512", "45.12%", 1.0),
        ("0.45", "46%", 0.0),
        ("4.5", "45%", 0.0),
        ("0.45", "0.45, i.e. 45%", 1.0),
        # scientific notation, units, \text, separators
        ("1000", "1e3", 1.0),
        ("1000", "10^3", 1.0),
        ("7200000", "7.2 \\times 10^{6}", 1.0),
        ("7.2e6", "7,200,000", 1.0),
        ("2.83", "2.83 cm^2", 1.0),
        ("2.83", "The area is 2.83 cm^2.", 1.0),
        ("8.4", "8.4 m/s^2", 1.0),
        ("8.4", "\\text{8.4 m/s}^2", 1.0),
        ("2.83", "$2.83\\,\\text{cm}^{2}$", 1.0),
        ("12000", "12,000", 1.0),
        ("12000", "12,000 m", 1.0),
    ],
)
def test_numerical_notations_and_percent(solution, answer, expected):
    assert acc("numerical", solution, answer) == expected


def test_regression_and_count_with_percent_and_units():
    assert acc("regression", "0.5", "50%") == pytest.approx(1.0)
    assert acc("regression", "50", "50%") == pytest.approx(1.0)
    assert acc("regression", "2.8", "2.83 m^2") == pytest.approx(1.0)
    assert acc("REC", "3", "3 times") == 1.0
    assert acc("REC", "1000", "1e3") == 1.0
