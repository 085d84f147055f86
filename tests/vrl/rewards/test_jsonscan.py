"""JSON inside free text: every balanced candidate is tried, in time bounded by the text's length."""

import time

import pytest

from vrl.rewards import score
from vrl.rewards.jsonscan import MAX_DEPTH, iter_json, last_json
from vrl.rewards.tasks.grounding import parse_box, parse_grounding_object, parse_span


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ('{"time": [1, 2]}', [{"time": [1, 2]}]),
        ('x [1,2] y {"a": "]"} z', [[1, 2], {"a": "]"}]),  # a bracket inside a JSON string
        ('[x, {"time":[1,2]}]', [{"time": [1, 2]}]),  # the outer span fails, the inner one decodes
        ('[{"time":[1,2]}, x]', [{"time": [1, 2]}]),
        ('he said "hi [1, 2]"', [[1, 2]]),  # prose quotes outside brackets do not matter
        ("[1, 2}", []),  # mismatched closer
        ('{"s": "broken\nstring"} [3,4]', [[3, 4]]),  # a string cannot span a line
        ('{"a": NaN} {"b": Infinity}', []),
        ("[" * 5000, []),
    ],
)
def test_iter_json(text, values):
    assert list(iter_json(text)) == values


def test_nesting_beyond_the_limit_is_not_decoded():
    shallow = "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1)
    assert list(iter_json(shallow))  # decoded whole
    deep = "[" * 100000 + "]" * 100000
    assert all(isinstance(v, list) for v in iter_json(deep))


def test_last_json():
    assert last_json('{"time": [1, 2]} and {"time": [3, 4]} {"x": 1}', lambda v: "time" in v) == {
        "time": [3, 4]
    }
    assert last_json("nothing", lambda v: True) is None


def fragments(count: int) -> str:
    return "".join(f"[{i}, x] {{bad {i}}} [[{i}]] " for i in range(count))


def test_many_fragments_before_the_answer_do_not_hide_it():
    text = fragments(5000) + ' so the answer is {"time": [3, 7]}'
    start = time.perf_counter()
    assert parse_span(text) == (3.0, 7.0)
    assert parse_grounding_object(text) == {"time": [3, 7]}
    assert time.perf_counter() - start < 5.0  # ~0.1 s; generous for a loaded machine
    boxes = "".join(f"[{i}, 1] " for i in range(5000)) + '{"boxes": [1, 2, 3, 4]}'
    assert parse_box(boxes) == (1.0, 2.0, 3.0, 4.0)


def test_many_fragments_through_score():
    sample = {"problem_type": "temporal grounding", "solution": '{"time": [3, 7]}'}
    answer = "".join(f"[{i}, x] " for i in range(5000)) + '{"time": [3, 7]}'
    assert len(answer) < 65536
    assert score(sample, f"<answer>{answer}</answer>")["accuracy"] == 1.0


@pytest.mark.parametrize(
    "text",
    [
        fragments(5000),
        "[" * 31 + ",".join(["1"] * 30000) + ",x" + "]" * 31,  # nested failing spans: MAX_DEPTH re-reads
        '{"a": [' * 20000,
        '["' * 30000,
        "[1," * 30000 + "]" * 30000,
    ],
    ids=["fragments", "nested_fail", "open_objects", "open_strings", "unbalanced_lists"],
)
def test_adversarial_inputs_stay_fast(text):
    start = time.perf_counter()
    list(iter_json(text))
    assert time.perf_counter() - start < 5.0  # each well under a second
