"""Temporal (bullet 4), spatial (5), spatial-temporal (6) grounding and tracking (7)."""

import json

import pytest

from vrl.rewards import score
from vrl.rewards.tasks.grounding import iou_1d, iou_2d, parse_box, parse_span


def run(problem_type, truth, answer):
    solution = f"<answer>{json.dumps(truth)}</answer>" if not isinstance(truth, str) else truth
    return score({"problem_type": problem_type, "solution": solution}, f"<answer>{answer}</answer>")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"time": [10, 20]}', 1.0),
        ('{"time": [20, 10]}', 1.0),  # reversed spans are swapped
        ('{"time": [15, 25]}', 5 / 15),
        ('{"time": [30, 40]}', 0.0),
        ('{"time": [-5, 15]}', 5 / 25),  # times are used as given, no clipping
        ("from 10 to 20 seconds", 1.0),
        ("10s - 20s", 1.0),
        ("10.0 – 20.0", 1.0),
        ("[10, 20]", 1.0),
        ('{"time": ["10", "20"]}', 1.0),
    ],
)
def test_temporal_iou(answer, expected):
    result = run("temporal grounding", {"time": [10, 20]}, answer)
    assert result["accuracy"] == pytest.approx(expected)
    assert result["iou"] == pytest.approx(expected)
    assert result["format"] == 1.0


@pytest.mark.parametrize(
    "answer", ["somewhere in the middle", '{"time": [1]}', '{"time": "x"}', "1 to 2 or 3 to 4"]
)
def test_temporal_unparsable_scores_zero(answer):
    result = run("temporal grounding", {"time": [10, 20]}, answer)
    assert result["accuracy"] == 0.0
    assert result["format"] == 0.5


def test_temporal_truth_inside_think_as_charades_has():
    solution = '<think>{"time": [24.296875, 30.40625], "boxes": {}}</think><[PLHD21_never_used_51bce0c785]>'
    assert run("temporal grounding", solution, '{"time": [24.296875, 30.40625]}')["accuracy"] == 1.0


def test_spatial_iou():
    truth = {"boxes": [0, 0, 10, 10]}
    assert run("spatial grounding", truth, '{"boxes": [0, 0, 10, 10]}')["accuracy"] == 1.0
    assert run("spatial grounding", truth, '{"boxes": [10, 10, 0, 0]}')["accuracy"] == 1.0
    assert run("spatial grounding", truth, '{"boxes": [5, 0, 15, 10]}')["accuracy"] == pytest.approx(50 / 150)
    assert run("spatial grounding", truth, '{"boxes": [[0, 0, 10, 5]]}')["accuracy"] == pytest.approx(0.5)
    assert run("spatial grounding", truth, "[0, 0, 10, 10]")["accuracy"] == 1.0
    assert run("spatial grounding", truth, '{"boxes": [20, 20, 30, 30]}')["accuracy"] == 0.0
    bad = run("spatial grounding", truth, '{"boxes": [1, 2, 3]}')
    assert (bad["accuracy"], bad["format"]) == (0.0, 0.5)


def test_spatial_temporal():
    truth = {"time": [0, 4], "boxes": {"1": [0, 0, 10, 10], "2": [0, 0, 10, 10]}}
    perfect = run("spatial-temporal grounding", truth, json.dumps(truth))
    assert perfect["accuracy"] == 1.0
    # half the time span, one of two seconds right (keys compare as integers), one missing
    answer = '{"time": [0, 2], "boxes": {"1.0": [0, 0, 10, 10]}}'
    result = run("spatial-temporal grounding", truth, answer)
    assert result["tiou"] == pytest.approx(0.5)
    assert result["miou"] == pytest.approx(0.5)
    assert result["accuracy"] == pytest.approx(0.5)
    boxes_only = run(
        "spatial-temporal grounding", truth, '{"boxes": {"1": [0, 0, 10, 10], "2": [0, 0, 10, 10]}}'
    )
    assert boxes_only["accuracy"] == pytest.approx(0.5)
    assert boxes_only["format"] == 0.5


def test_spatial_temporal_without_truth_boxes_scores_time_only():
    truth = {"time": [1.2, 1.8], "boxes": {}}
    assert run("spatial-temporal grounding", truth, '{"time": [1.2, 1.8], "boxes": {}}')["accuracy"] == 1.0


def test_tracking_mean_iou_missing_seconds_zero():
    truth = {"boxes": {"0": [0, 0, 10, 10], "1": [0, 0, 10, 10], "2": [0, 0, 10, 10], "3": [0, 0, 10, 10]}}
    answer = '{"boxes": {"0": [0, 0, 10, 10], "1": [0, 0, 10, 5], "7": [0, 0, 10, 10]}}'
    assert run("tracking", truth, answer)["accuracy"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert run("tracking", truth, json.dumps(truth))["accuracy"] == 1.0


def test_iou_helpers_degenerate():
    assert iou_1d((5.0, 5.0), (5.0, 5.0)) == 1.0
    assert iou_1d((5.0, 5.0), (6.0, 6.0)) == 0.0
    assert iou_2d((0, 0, 0, 0), (0, 0, 0, 0)) == 1.0
    assert iou_2d((0, 0, 1e308, 1e308), (-1e308, -1e308, 0, 0)) == 0.0


def test_parsers_reject_non_finite_and_garbage():
    assert parse_span('{"time": [NaN, 3]}') is None
    assert parse_span('{"time": [1e999, 3]}') is None
    assert parse_box('{"boxes": [true, 0, 1, 1]}') is None
    assert parse_box("[" * 5000) is None


def test_malformed_truth_is_a_data_error():
    with pytest.raises(ValueError):
        run("temporal grounding", "<answer>no json</answer>", '{"time": [1, 2]}')


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("00:10 - 00:20", 1.0),
        ("from 00:10 to 00:20", 1.0),
        ("0:10-0:20", 1.0),
        ("00:00:10 to 00:00:20", 1.0),
        ("[00:10, 00:20]", 1.0),
        ('{"time": ["00:10", "00:20"]}', 1.0),
        ('{"time": ["00:00:10.0", "00:00:15"]}', 0.5),
        ("00:15 - 00:25", 5 / 15),
    ],
)
def test_temporal_clock_times(answer, expected):
    result = run("temporal grounding", {"time": [10, 20]}, answer)
    assert result["accuracy"] == pytest.approx(expected)
    assert result["format"] == 1.0


def test_temporal_clock_times_with_hours_and_minutes():
    truth = {"time": [3723, 3730]}
    assert run("temporal grounding", truth, "01:02:03 - 01:02:10")["accuracy"] == 1.0
    assert run("temporal grounding", {"time": [90, 120]}, "between 1:30 and 2:00")["accuracy"] == 1.0
    assert parse_span("12:345 to 5") is None  # not a clock time


def test_the_last_json_answer_counts():
    truth = {"time": [10, 20]}
    assert (
        run("temporal grounding", truth, '{"time": [1, 2]} no, rather {"time": [10, 20]}')["accuracy"] == 1.0
    )
    box = {"boxes": [0, 0, 10, 10]}
    assert (
        run("spatial grounding", box, '{"boxes": [5, 5, 9, 9]} corrected: {"boxes": [0, 0, 10, 10]}')[
            "accuracy"
        ]
        == 1.0
    )
