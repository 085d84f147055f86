"""Multiple choice (issue bullet 1): one letter recovered, option text accepted, two letters score 0."""

import pytest

from vrl.rewards import score
from vrl.rewards.tasks.choice import parse_options, recover_letter

OPTIONS = ["A. a red car", "B. a blue bus", "C. Vitamin C", "D. nothing"]


def sample(solution="<answer>C</answer>", options=OPTIONS, problem_type="multiple choice"):
    return {"problem_type": problem_type, "solution": solution, "options": options}


@pytest.mark.parametrize(
    "answer",
    [
        "C",
        "(C)",
        "C.",
        "C. Vitamin C",
        "**C**",
        "The answer is C",
        "the answer is C.",
        "Vitamin C",
        "vitamin c",
        "I think C",  # I is not an option letter: ignored
        "C: Vitamin C",
        "Answer: (C) Vitamin C",
        "$C$",
    ],
)
def test_correct_letter_forms(answer):
    result = score(sample(), f"<answer>{answer}</answer>")
    assert result["accuracy"] == 1.0
    assert result["format"] == 1.0


@pytest.mark.parametrize("answer", ["A or C", "B, C", "C. no wait, D"])
def test_two_letters_score_zero(answer):
    result = score(sample(), f"<answer>{answer}</answer>")
    assert result["accuracy"] == 0.0
    assert result["format"] == 0.5


def test_letters_outside_the_options_are_ignored():
    assert score(sample(), "<answer>E</answer>")["accuracy"] == 0.0
    assert score(sample(), "<answer>E</answer>")["format"] == 0.5
    assert score(sample(), "<answer>Z. then C</answer>")["accuracy"] == 1.0


def test_wrong_letter():
    result = score(sample(), "<answer>B</answer>")
    assert result == {"overall": pytest.approx(0.1), "format": 1.0, "accuracy": 0.0}


def test_lowercase_letter_is_not_a_choice_but_option_text_is():
    assert score(sample(), "<answer>c</answer>")["accuracy"] == 0.0
    assert score(sample(), "<answer>a blue bus</answer>")["accuracy"] == 0.0
    assert score(sample(solution="<answer>B</answer>"), "<answer>a blue bus</answer>")["accuracy"] == 1.0


def test_option_text_occurrence_counts_when_no_letter():
    assert score(sample(), "<answer>It is clearly Vitamin C here</answer>")["accuracy"] == 1.0


def test_word_letters_are_not_candidates():
    # letters inside words and "I'm" are not standalone letters; markdown around a letter is fine
    assert recover_letter("I'm sure: D", parse_options(OPTIONS)) == "D"
    assert recover_letter("ABCD", parse_options(OPTIONS)) is None
    assert recover_letter("_B_", parse_options(OPTIONS)) == "B"  # markdown italics


def test_options_whose_texts_are_letters():
    options = ["A. E.", "B. A.", "C. C.", "D. D.", "E. B."]
    assert score(sample("<answer>E</answer>", options), "<answer>E</answer>")["accuracy"] == 1.0
    assert score(sample("<answer>E</answer>", options), "<answer>A</answer>")["accuracy"] == 0.0


def test_option_formats():
    assert parse_options(["A: x", "B: y"]) == {"A": "x", "B": "y"}
    assert parse_options(["(A) x", "(B) y"]) == {"A": "x", "B": "y"}
    assert parse_options(["x", "y"]) == {"A": "x", "B": "y"}
    assert parse_options({"A": "x"}) == {"A": "x"}
    assert parse_options(None) == {}
    assert parse_options(["A. x", "B. y", "B. "]) == {"A": "x", "B": "y"}  # repeated letter: first wins


def test_without_options_any_capital_letter_is_a_letter():
    s = {"problem_type": "multiple_choice", "solution": "<answer>B</answer>"}
    assert score(s, "<answer>(B)</answer>")["accuracy"] == 1.0


def test_truth_given_as_option_text():
    assert score(sample("<answer>a blue bus</answer>"), "<answer>B</answer>")["accuracy"] == 1.0


def test_truth_that_names_no_option_is_a_data_error():
    with pytest.raises(ValueError, match="names no option"):
        score(sample("<answer>Q</answer>"), "<answer>A</answer>")
