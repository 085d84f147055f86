"""For every problem type, what is written inside <think>…</think> never decides the score.

Each case gives a sample, a right answer and a wrong one. Without an <answer> tag, the right answer
inside the reasoning followed by the wrong one scores like the wrong one alone, and the wrong one inside
the reasoning followed by the right one scores like the right one alone.
"""

import json

import pytest

from vrl.rewards import RewardConfig, known_types, score

BOX = [10, 20, 110, 220]
TRACK = {"1": [1, 2, 30, 40], "2": [2, 3, 31, 41]}
CASES = {
    "multiple choice": (
        {"solution": "<answer>C</answer>", "options": ["A. cat", "B. dog", "C. bird", "D. fish"]},
        "C",
        "B",
    ),
    "numerical": ({"solution": "12.97"}, "12.97", "13.5"),
    "regression": ({"solution": "4"}, "4", "40"),
    "REC": ({"solution": "3"}, "3", "5"),
    "boolean": ({"solution": "Yes"}, "yes", "no"),
    "SSR": ({"solution": "No"}, "no", "yes"),
    "CRR": ({"solution": "Yes"}, "yes", "no"),
    "open-ended": ({"solution": "Dolly Zoom"}, "dolly zoom", "pan left"),
    "caption": (
        {"solution": "A man in a gray cap explains a derivative on a whiteboard."},
        "A man in a gray cap explains a derivative on a whiteboard.",
        "Two dogs play fetch on a sunny beach near the water.",
    ),
    "ocr": ({"solution": "OPEN 24 HOURS"}, "OPEN 24 HOURS", "CLOSED"),
    "llava": ({"solution": "Response 2"}, "Response 2", "Response 1"),
    "math": ({"solution": "\\frac{1}{2}"}, "\\frac{1}{2}", "\\frac{1}{3}"),
    "temporal grounding": ({"solution": '{"time": [10, 20]}'}, '{"time": [10, 20]}', '{"time": [40, 50]}'),
    "spatial grounding": (
        {"solution": json.dumps({"boxes": BOX})},
        json.dumps({"boxes": BOX}),
        '{"boxes": [300, 300, 400, 400]}',
    ),
    "spatial-temporal grounding": (
        {"solution": json.dumps({"time": [1, 3], "boxes": TRACK})},
        json.dumps({"time": [1, 3], "boxes": TRACK}),
        '{"time": [7, 9], "boxes": {"8": [0, 0, 1, 1]}}',
    ),
    "tracking": (
        {"solution": json.dumps({"boxes": TRACK})},
        json.dumps({"boxes": TRACK}),
        '{"boxes": {"1": [300, 300, 400, 400]}}',
    ),
    "code": (
        {
            "problem_type": "svg-code",
            "solution": '<svg xmlns="http://www.w3.org/2000/svg"><rect/><circle/></svg>',
        },
        '<svg xmlns="http://www.w3.org/2000/svg"><rect/><circle/></svg>',
        "not markup at all",
    ),
}
CONFIG = RewardConfig(timeout_s=5.0)


def run(name: str, response: str) -> float:
    sample = {"problem_type": name, **CASES[name][0]}
    return score(sample, response, CONFIG)["accuracy"]


def test_every_type_is_covered():
    assert set(CASES) == set(known_types())


@pytest.mark.parametrize("name", sorted(CASES))
def test_reasoning_does_not_decide(name):
    _, right, wrong = CASES[name]
    assert run(name, right) == pytest.approx(1.0)
    assert run(name, wrong) < 0.5
    assert run(name, f"<think>{right}</think>\n{wrong}") == run(name, wrong)
    assert run(name, f"<think>{wrong}</think>\n{right}") == pytest.approx(1.0)
    assert run(name, f"{right} </think> {wrong}") == run(name, wrong)  # the template opened <think>
    assert run(name, f"<think>{right}</think>") == 0.0  # no answer after the reasoning
    assert run(name, f"<think>{right}") == 0.0  # cut off while reasoning


def test_draft_json_in_reasoning_does_not_decide_grounding():
    response = '<think>First guess {"time": [10, 20]}, then I rechecked.</think> {"time": [40, 50]}'
    assert run("temporal grounding", response) == 0.0
    response = '<think>draft {"time": [40, 50]}</think> final: {"time": [10, 20]}'
    assert run("temporal grounding", response) == 1.0
