"""score / score_batch: format rule, weights, require_think, per-sample routing, order, bounds."""

import pytest

from vrl.rewards import RewardConfig, Verdict, register_reward, score, score_batch, unregister_reward
from vrl.rewards.scoring import as_verdict

MC = {"problem_type": "multiple choice", "solution": "<answer>A</answer>", "options": ["A. yes", "B. no"]}
NUM = {"problem_type": "numerical", "solution": "<answer>7</answer>"}


def test_format_one_when_tag_parses():
    assert score(MC, "<answer>A</answer>") == {"overall": 1.0, "format": 1.0, "accuracy": 1.0}


def test_format_half_when_tag_does_not_parse():
    assert score(NUM, "<answer>7 or 8</answer>") == {"overall": 0.05, "format": 0.5, "accuracy": 0.0}


def test_format_zero_without_tag_but_accuracy_still_counts():
    assert score(NUM, "It is 7.") == {"overall": pytest.approx(0.9), "format": 0.0, "accuracy": 1.0}
    assert score(NUM, "so \\boxed{7}") == {"overall": pytest.approx(0.9), "format": 0.0, "accuracy": 1.0}


def test_last_answer_tag_is_judged():
    assert score(NUM, "<answer>7</answer> wait <answer>8</answer>")["accuracy"] == 0.0
    assert score(NUM, "<answer>8</answer> wait <answer>7</answer>")["accuracy"] == 1.0


def test_weights_are_configurable():
    cfg = RewardConfig(accuracy_weight=0.5, format_weight=0.5)
    assert score(NUM, "<answer>8</answer>", cfg)["overall"] == pytest.approx(0.5)


@pytest.mark.parametrize(("acc", "fmt"), [(0.8, 0.1), (1.1, -0.1), (0.5, 0.6)])
def test_weights_must_sum_to_one_and_lie_in_unit_interval(acc, fmt):
    with pytest.raises(ValueError, match=r"accuracy_weight|format_weight"):
        score(NUM, "7", RewardConfig(accuracy_weight=acc, format_weight=fmt))


def test_require_think():
    cfg = RewardConfig(require_think=True)
    with_think = score(NUM, "<think>3+4</think><answer>7</answer>", cfg)
    assert with_think == {"overall": 1.0, "format": 1.0, "accuracy": 1.0, "think": 1.0}
    without = score(NUM, "<answer>7</answer>", cfg)
    assert (without["format"], without["accuracy"], without["think"]) == (0.0, 1.0, 0.0)
    after = score(NUM, "<answer>7</answer><think>late</think>", cfg)
    assert after["format"] == 0.0


def test_overlong_answer_is_unparsable():
    cfg = RewardConfig(max_answer_chars=100)
    result = score(NUM, "<answer>" + "7" + " " * 200 + "</answer>", cfg)
    # whitespace is stripped first: 1 character
    assert result["accuracy"] == 1.0
    long = score(NUM, "<answer>7" + "x" * 200 + "</answer>", cfg)
    assert (long["accuracy"], long["format"]) == (0.0, 0.5)


def test_batch_routes_per_sample_and_keeps_order():
    samples = [MC, NUM, MC, {"problem_type": "boolean", "solution": "no"}, NUM]
    responses = ["<answer>A</answer>", "<answer>7</answer>", "<answer>B</answer>", "<answer>no</answer>", "x"]
    results = score_batch(samples, responses)
    assert [r["accuracy"] for r in results] == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert results == [score(s, r) for s, r in zip(samples, responses)]


def test_batch_with_slow_types_keeps_order_across_pools():
    code = {"problem_type": "code", "solution": "", "tests": ["assert f() == 1"]}
    math = {"problem_type": "math", "solution": "\\frac{1}{2}"}
    caption = {"problem_type": "caption", "solution": "A person opens the door and walks into the kitchen."}
    samples = [code, NUM, math, caption, code, math]
    responses = [
        "<answer>def f():\n    return 1</answer>",
        "<answer>7</answer>",
        "<answer>0.5</answer>",
        "<answer>A person opens the door and walks into the kitchen.</answer>",
        "<answer>def f():\n    return 2</answer>",
        "<answer>0.25</answer>",
    ]
    for workers in (1, 2):
        results = score_batch(samples, responses, RewardConfig(num_workers=workers))
        assert [r["accuracy"] for r in results] == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])


def test_batch_length_mismatch_and_unknown_type_fail_before_work():
    with pytest.raises(ValueError, match="2 samples but 1 responses"):
        score_batch([NUM, NUM], ["7"])
    with pytest.raises(ValueError, match="Known types"):
        score_batch([NUM, {"problem_type": "nope", "solution": "1"}], ["7", "1"])


def test_sample_must_be_a_mapping():
    with pytest.raises(ValueError, match="dict"):
        score("numerical", "7")


def test_extras_are_clipped_and_nan_is_zero():
    @register_reward("wild", answer_format="anything", example="x")
    def wild(answer, sample, config):
        return Verdict(float("nan"), parsed=True, extras={"big": 5.0, "neg": -1.0})

    try:
        result = score({"problem_type": "wild", "solution": "x"}, "<answer>x</answer>")
        assert result == {"overall": 0.1, "format": 1.0, "accuracy": 0.0, "big": 1.0, "neg": 0.0}
    finally:
        unregister_reward("wild")


def test_as_verdict():
    assert as_verdict(1) == Verdict(1.0)
    with pytest.raises(TypeError):
        as_verdict("1.0")


def test_non_string_responses_do_not_raise():
    for response in (None, 7, b"<answer>7</answer>", ["<answer>7</answer>"]):
        result = score(NUM, response)
        assert 0.0 <= result["overall"] <= 1.0
