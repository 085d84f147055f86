"""Math (bullet 9): math-verify equivalence in a worker process, under a time limit."""

import pytest

from vrl.rewards import RewardConfig, score
from vrl.rewards.tasks.symbolic import normalize_math


def acc(solution, answer, **config):
    s = {"problem_type": "math", "solution": solution}
    return score(s, f"<answer>{answer}</answer>", RewardConfig(**config))


@pytest.mark.parametrize(
    ("solution", "answer"),
    [
        ("<answer>$\\frac{1}{2}$</answer>", "0.5"),
        ("<answer>\\frac{1}{2}</answer>", "$\\dfrac{1}{2}$"),
        ("x^2+2x+1", "(x+1)^2"),
        ("\\sqrt{8}", "2\\sqrt{2}"),
        ("3", "\\boxed{3}"),
    ],
)
def test_equivalent(solution, answer):
    result = acc(solution, answer)
    assert result["accuracy"] == 1.0
    assert result["format"] == 1.0


@pytest.mark.parametrize(("solution", "answer"), [("\\sqrt{2}", "1.414"), ("\\pi", "3"), ("x+1", "x-1")])
def test_not_equivalent(solution, answer):
    assert acc(solution, answer)["accuracy"] == 0.0


def test_unparsable_answer():
    result = acc("3", "")
    assert result["accuracy"] == 0.0


def test_pathological_latex_returns_within_the_limit():
    answer = "\\frac{" * 400 + "1" + "}{2}" * 400
    result = acc("1", answer, timeout_s=2.0)
    assert result["accuracy"] == 0.0
    huge_power = acc("1", "9^{9^{9^{9^{9^{9}}}}}", timeout_s=2.0)
    assert huge_power["accuracy"] == 0.0


def test_malformed_truth_is_a_data_error():
    with pytest.raises(ValueError, match="does not parse"):
        acc("", "1")


@pytest.mark.parametrize(
    ("solution", "answer"),
    [
        ("\\infty", "∞"),
        ("-\\infty", "-∞"),
        ("(0, \\infty)", "(0, ∞)"),
        ("\\infty", "infinity"),
        ("5", "5 \\text{ cm}"),
        ("5", "\\text{5 cm}"),
        ("2.83", "2.83 \\text{ cm}^2"),
        ("2.83", "\\text{2.83 cm}^2"),
        ("8", "2**3"),
        ("x^2 + 1", "x**2 + 1"),
        ("\\sqrt{2}", "2**(1/2)"),
        ("7200000", "7.2 \\times 10^{6}"),
        ("7200000", "7.2e6"),
        ("0.001", "1e-3"),
        ("0.45", "45\\%"),
    ],
)
def test_infinity_units_powers_and_notation(solution, answer):
    assert acc(solution, answer)["accuracy"] == 1.0


def test_what_math_verify_cannot_read_is_documented():
    # a unit outside \text{} is read as variables: 2.83·c·m² is not 2.83 (module docstring)
    assert acc("2.83", "2.83 cm^2")["accuracy"] == 0.0
    assert normalize_math("2.83 cm^2") == "2.83 cm^2"


def test_normalize_math():
    assert normalize_math("x**2 + 2**(1/2)") == "x^{2} + 2^{(1/2)}"
    assert normalize_math("7.2e6") == "7.2 \\times 10^{6}"
    assert normalize_math("\\text{5 cm}") == "5\\text{ cm}"
    assert normalize_math("\\text{5}") == "5"
    assert normalize_math("(0, ∞)").startswith("(0, \\infty")
