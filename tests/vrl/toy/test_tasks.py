import json
from collections import Counter

import pytest

from vrl.toy.scenes import inside
from vrl.toy.spec import ToyConfig
from vrl.toy.suite import plan_split
from vrl.toy.tasks import family_names, get_family

BIG = ToyConfig(num_train=600, num_val=0, coverage_every=5)


@pytest.fixture(scope="module")
def plan():
    return plan_split(BIG, "train")


def _answer(record):
    return record["solution"][len("<answer>") : -len("</answer>")]


def test_plan_is_pure(plan):
    assert plan_split(BIG, "train") == plan


def test_registry_raises_listing_names():
    assert len(family_names()) == 16
    with pytest.raises(ValueError, match="Known families: color"):
        get_family("nope")


@pytest.mark.parametrize("task", ["color", "shape", "direction", "boolean", "count_flashes", "count_objects"])
def test_answers_are_balanced(plan, task):
    answers = Counter(_answer(r) for r, _ in plan if r["task"] == task)
    assert len(answers) >= 2
    assert max(answers.values()) - min(answers.values()) <= 1, answers


def test_option_values_are_balanced(plan):
    for task in ("color", "shape", "direction"):
        values = Counter()
        for r, _ in plan:
            if r["task"] == task:
                letter = _answer(r)
                values[next(o[3:] for o in r["options"] if o.startswith(letter + "."))] += 1
        assert max(values.values()) - min(values.values()) <= 1, (task, values)


def test_coverage_variants_all_appear(plan):
    scenes = [s for _, s in plan]
    assert any(s.rate == "30000/1001" for s in scenes)
    assert any(s.vfr for s in scenes)
    assert any(s.duration == BIG.coverage_max_duration for s in scenes)
    assert any(s.background == "pattern" for s in scenes)
    assert any(s.kind == "image" and s.image_format == "jpg" for s in scenes)
    ordinary = [s for s in scenes if s.kind == "video" and not s.vfr and s.rate != "30000/1001"]
    assert all(float(s.rate) in BIG.fps_choices for s in ordinary)


def test_objects_stay_inside_the_frame(plan):
    for record, scene in plan:
        times = scene.frame_times()
        for obj in scene.objects:
            for t in (times[0], times[-1]):
                assert inside(obj.box_at(t), scene.width, scene.height), record["problem_id"]


def test_grounding_answers_match_scene(plan):
    for record, scene in plan:
        task, answer = record["task"], _answer(record)
        if task == "tracking":
            boxes = json.loads(answer)["boxes"]
            assert [int(k) for k in boxes] == scene.whole_seconds()
            assert all(boxes[str(t)] == list(scene.objects[0].box_at(t)) for t in scene.whole_seconds())
        elif task == "spatial_temporal_grounding":
            got = json.loads(answer)
            start, end = got["time"]
            assert scene.objects[0].visible == ((start, end),)
            assert [int(k) for k in got["boxes"]] == list(range(int(start), int(end) + 1))
            assert end <= scene.last_time
        elif task == "temporal_grounding":
            start, end = json.loads(answer)["time"]
            assert scene.objects[0].visible == ((start, end),) and end < scene.duration
        elif task == "spatial_grounding":
            assert json.loads(answer)["boxes"] == list(scene.objects[0].box_at(0.0))
        elif task in ("size", "speed"):
            obj = scene.objects[0]
            assert int(answer) == (obj.size if task == "size" else abs(obj.vx) + abs(obj.vy)) > 0
        elif task == "math":
            assert int(answer) == eval(scene.notes["expression"])  # digits and +/- only
        elif task == "count_objects":
            assert int(answer) == len(scene.objects)


def test_frame_sizes_respect_config(plan):
    for record, scene in plan:
        assert BIG.min_side <= scene.width <= max(BIG.max_side, 96), record["problem_id"]
        assert BIG.min_side <= scene.height <= max(BIG.max_side, 96)


def test_solutions_score_full_marks_with_the_rewards(plan):
    """The suite and the reward registry agree on every answer format (offline outputs are correct)."""
    from vrl.rewards import score

    seen = set()
    for record, _ in plan:
        if record["task"] in seen:
            continue
        seen.add(record["task"])
        result = score(record, record["offline_output"])
        assert result["accuracy"] == 1.0 and result["format"] == 1.0, (record["task"], result)
    assert len(seen) == len(family_names())


def test_fixed_option_order_names_the_answer_by_letter(plan):
    for r, _ in plan:
        if r["task"] == "color":
            assert [o[3:] for o in r["options"]] == ["red", "green", "blue", "yellow", "magenta", "cyan"]
            letter = _answer(r)
            assert next(o[3:] for o in r["options"] if o.startswith(letter + ".")) in r["offline_output"]


def test_shuffled_options_balance_the_correct_letter():
    shuffled = plan_split(
        ToyConfig(num_train=240, num_val=0, families=["color"], shuffle_options=True), "train"
    )
    orders = {tuple(r["options"]) for r, _ in shuffled}
    letters = Counter(_answer(r) for r, _ in shuffled)
    assert len(orders) > 4
    assert max(letters.values()) - min(letters.values()) <= 1, letters
