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


def test_sentences_are_not_exact():
    result = score({"problem_type": "boolean", "solution": "yes"}, "<answer>Yes, it is</answer>")
    assert result["accuracy"] == 0.0
    assert result["format"] == 0.5


def test_bad_truth_is_a_data_error():
    with pytest.raises(ValueError, match="not yes/no"):
        score({"problem_type": "boolean", "solution": "maybe"}, "yes")
