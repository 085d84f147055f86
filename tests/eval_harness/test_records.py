"""Bad annotation input: clear errors naming the file and the record."""

from __future__ import annotations

import json

import pytest

from eval_harness.benchmarks import get_benchmark
from eval_harness.records import KEY, assign_keys, load_benchmark

GOOD = {
    "problem_id": 7,
    "problem": "What happens?",
    "problem_type": "multiple choice",
    "options": ["A. x", "B. y"],
    "solution": "<answer>A</answer>",
    "path": "v.mp4",
    "duration": "short",
    "domain": "Knowledge",
    "task_type": "Counting Problem",
}


def _load(tmp_path, records, name="videomme"):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(records))
    return load_benchmark(get_benchmark(name), path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"problem_type": "caption"}, "problem_type='caption'; Video-MME records are: multiple choice"),
        ({"problem_type": "haiku"}, "problem_type='haiku', unknown to vrl.rewards"),
        ({"duration": "extra-long"}, "duration='extra-long'; expected one of: short, medium, long"),
        ({"options": {"A": 1}}, "expected a list of strings"),
        ({"solution": "<answer>Q</answer>"}, "solution the reward cannot read"),
        ({"problem_id": None}, "problem_id=None"),
        ({"path": 3}, "path=3; expected a string"),
    ],
)
def test_bad_record_names_file_and_record(tmp_path, change, message):
    with pytest.raises(ValueError) as err:
        _load(tmp_path, [GOOD, {**GOOD, "problem_id": 8, **change}])
    text = str(err.value)
    assert str(tmp_path / "ann.json") in text and "record 1" in text and message in text


def test_missing_required_field_and_many_errors(tmp_path):
    bad = {k: v for k, v in GOOD.items() if k != "task_type"}
    with pytest.raises(ValueError, match=r"lacks the field 'task_type'[\s\S]*and 2 more"):
        _load(tmp_path, [{**bad, "problem_id": i} for i in range(7)])


def test_not_a_list_of_objects_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"record 0 .* not a JSON object|every record must be a JSON object"):
        _load(tmp_path, [1, 2])
    with pytest.raises(ValueError, match=r"TempCompass: annotation file not found.*FORMAT\.md"):
        load_benchmark(get_benchmark("tempcompass"), tmp_path / "nope.json")


def test_options_as_list_text_are_parsed(tmp_path):
    record = {**GOOD, "options": "['A. 24', 'B. 28']"}
    assert _load(tmp_path, [record])[0]["options"] == ["A. 24", "B. 28"]


def test_keys_for_shared_problem_ids():
    records = [
        {"problem_id": 1},
        {"problem_id": 2},
        {"problem_id": 2},
        {"problem_id": 3, "m": "a"},
        {"problem_id": 3},
    ]
    assign_keys(records)
    assert [r[KEY] for r in records] == ["1", "2#0", "2#1", "3#0", "3#1"]
    records = [{"problem_id": 3, "m": "a"}, {"problem_id": 3}, {"problem_id": 3, "m": "b"}]
    assign_keys(records, "m")
    assert [r[KEY] for r in records] == ["3#a", "3", "3#b"]
    with pytest.raises(ValueError, match="share the key"):
        assign_keys([{"problem_id": 3, "m": "a"}, {"problem_id": 3, "m": "a"}], "m")
