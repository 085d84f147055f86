"""Preference (bullet 13): Response 1 / A / first → 1, Response 2 / B / second → 2, tie → 0."""

import pytest

from vrl.rewards import canonical_type, score
from vrl.rewards.tasks.preference import parse_preference


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Response 1", 1),
        ("A", 1),
        ("first", 1),
        ("The first response is better", 1),
        ("Response B", 2),
        ("2", 2),
        ("second", 2),
        ("Tie", 0),
        ("Both are equally good", 0),
        ("equal", 0),
        ("Response 1 is better than Response 2", None),
        ("no idea", None),
    ],
)
def test_parse_preference(text, label):
    assert parse_preference(text) == label


@pytest.mark.parametrize("problem_type", ["llava", "critic"])
def test_preference_scores(problem_type):
    assert canonical_type(problem_type) == "llava"
    s = {"problem_type": problem_type, "solution": "<answer>Response 2</answer>"}
    assert score(s, "<answer>B</answer>")["accuracy"] == 1.0
    assert score(s, "<answer>Response 1</answer>")["accuracy"] == 0.0
    assert score({**s, "solution": "Tie"}, "<answer>both</answer>")["accuracy"] == 1.0
