"""Boolean (bullet 11) and OVO-Bench SSR/CRR: yes/true/1 ↔ yes, no/false/0 ↔ no, exact."""

import pytest

from vrl.rewards import score


@pytest.mark.parametrize("problem_type", ["boolean", "SSR", "CRR"])
@pytest.mark.parametrize(
    ("solution", "answer", "expected"),
    [
        ("Yes", "yes", 1.0),
        ("Yes", "True", 1.0),
        ("yes", "1", 1.0),
        ("No", "no.", 1.0),
        ("no", "FALSE", 1.0),
        ("false", "0", 1.0),
        ("Yes", "**Yes**", 1.0),
        ("Yes", "no", 0.0),
        ("True", "0", 0.0),
    ],
)
def test_boolean(problem_type, solution, answer, expected):
    s = {"problem_type": problem_type, "solution": f"<answer>{solution}</answer>"}
    assert score(s, f"<answer>{answer}</answer>")["accuracy"] == expected


def test_a_leading_yes_no_needs_a_break_before_the_explanation():
    assert (
        score({"problem_type": "boolean", "solution": "yes"}, "<answer>Yes, it is</answer>")["accuracy"]
        == 1.0
    )
    result = score({"problem_type": "boolean", "solution": "yes"}, "<answer>Yes it is</answer>")
    assert result["accuracy"] == 0.0
    assert result["format"] == 0.5


def test_bad_truth_is_a_data_error():
    with pytest.raises(ValueError, match="not yes/no"):
        score({"problem_type": "boolean", "solution": "maybe"}, "yes")


@pytest.mark.parametrize("problem_type", ["boolean", "binary classification", "SSR", "CRR"])
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Yes, the man is running.", 1.0),
        ("yes. He runs to the door.", 1.0),
        ("**Yes**, the man is running.", 1.0),
        ("Yes!", 1.0),
        ("Yes - it is clearly running", 1.0),
        ("Yes\nThe man runs.", 1.0),
        ("True, he runs.", 1.0),
        ("The answer is yes.", 1.0),
        ("Answer: **Yes**", 1.0),
        ("No, the man is standing.", 0.0),
        ("The answer is no.", 0.0),
    ],
)
def test_leading_yes_no_with_explanation(problem_type, answer, expected):
    s = {"problem_type": problem_type, "solution": "<answer>Yes</answer>"}
    result = score(s, f"<answer>{answer}</answer>")
    assert result["accuracy"] == expected
    assert result["format"] == 1.0


@pytest.mark.parametrize("answer", ["no idea", "No one is there", "Yes it is", "Noted, yes", "maybe"])
def test_a_yes_no_word_without_a_break_is_no_answer(answer):
    result = score({"problem_type": "boolean", "solution": "no"}, f"<answer>{answer}</answer>")
    assert (result["accuracy"], result["format"]) == (0.0, 0.5)
