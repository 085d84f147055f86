"""``toy.teacher_confuses``: demonstrations from a teacher that cannot tell a pair of colors apart."""

from collections import Counter

import pytest

from vrl.rewards import score
from vrl.toy.spec import ToyConfig
from vrl.toy.suite import plan_split

PAIRS = ["red/magenta", "green/yellow", "blue/cyan"]


def _suite(**kw):
    return ToyConfig(num_train=240, num_val=24, families=["color", "boolean"], coverage_every=0, **kw)


def _correct(record):
    return score(record, record["offline_output"])["accuracy"] == 1.0


def test_a_confused_teacher_changes_only_the_demonstrations():
    exact, confused = _suite(), _suite(teacher_confuses=PAIRS)
    for split in ("train", "val"):
        for (a, sa), (b, sb) in zip(plan_split(exact, split), plan_split(confused, split), strict=True):
            assert sa == sb and a["solution"] == b["solution"] and a["problem"] == b["problem"]
            assert {k: v for k, v in a.items() if k != "offline_output"} == {
                k: v for k, v in b.items() if k != "offline_output"
            }
    assert exact.content_hash() != confused.content_hash()
    assert exact.content_hash() == _suite(teacher_confuses=[]).content_hash()


def test_the_teacher_names_either_color_of_a_pair_with_equal_odds():
    plan = plan_split(_suite(teacher_confuses=PAIRS), "train")
    named = Counter()
    for record, scene in plan:
        (obj,) = scene.objects
        if record["task"] != "color":
            continue
        # the offline answer's option is the true color or its partner, never a third color
        letter = record["offline_output"].split("<answer>")[1][0]
        option = next(o[3:] for o in record["options"] if o.startswith(letter + "."))
        partner = _suite(teacher_confuses=PAIRS).confusions()[obj.color]
        assert option in (obj.color, partner)
        assert option in record["offline_output"].split("</think>")[0]  # reasoning and answer agree
        named[option == obj.color] += 1
    assert named[True] + named[False] == 120 and 0.35 < named[True] / 120 < 0.65, named
    color = [r for r, _ in plan if r["task"] == "color"]
    boolean = [r for r, _ in plan if r["task"] == "boolean"]
    assert 0.35 < sum(map(_correct, color)) / len(color) < 0.65
    # wrong only where the asked color is the object's or its partner: about 0.7 right
    assert 0.55 < sum(map(_correct, boolean)) / len(boolean) < 0.85
    assert all(_correct(r) for r, _ in plan_split(_suite(), "train"))


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["red-magenta"], "not a pair"),
        (["red/red"], "not a pair"),
        (["red/pink"], "not a pair"),
        (["red/magenta", "magenta/blue"], "two pairs"),
    ],
)
def test_bad_pairs_are_refused_with_the_colors(pairs, message):
    with pytest.raises(ValueError, match=message):
        _suite(teacher_confuses=pairs).validate()


def test_an_answer_slip_names_the_right_color_and_the_partners_letter_half_the_time():
    cfg = _suite(teacher_confuses=PAIRS, teacher_error="answer")
    plan = plan_split(cfg, "train")
    right = 0
    for record, scene in plan:
        (obj,) = scene.objects
        if record["task"] == "boolean":
            assert _correct(record)  # only the multiple-choice families slip
            continue
        think, answer = record["offline_output"].split("</think>")
        assert f"it is {obj.color}. The option {obj.color} is" in think  # the reasoning sees right
        option = next(o[3:] for o in record["options"] if o.startswith(answer[len("<answer>")] + "."))
        assert option in (obj.color, cfg.confusions()[obj.color])
        right += _correct(record)
    assert 0.35 < right / 120 < 0.65, right
    assert cfg.content_hash() != _suite(teacher_confuses=PAIRS).content_hash()
    # without pairs the error's place changes nothing, nor the hash
    assert _suite(teacher_error="answer").content_hash() == _suite().content_hash()
    with pytest.raises(ValueError, match="choose from perception, answer"):
        _suite(teacher_error="labels").validate()
