"""Aggregations as the official code computes them (issue 12): golden numbers worked out by hand.

MLVU tasks from the official test / dev order, MVBench's pooled accuracy and its task coverage, STVG's
two box-IoU conventions, TempCompass per question format, Video-MMMU's question image, MMVU over all
1,000 questions.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from eval_harness.aggregate import Row
from eval_harness.benchmarks import get_benchmark
from eval_harness.benchmarks.mlvu import DEV_ORDER, TEST_ORDER, task_in_dev_split, task_in_test_split
from eval_harness.benchmarks.mvbench import TASKS as MVBENCH_TASKS
from eval_harness.benchmarks.stem import IMAGE_HINT
from eval_harness.official import REFERENCES
from eval_harness.records import KEY, load_benchmark
from eval_harness.report import render_markdown
from eval_harness.scoring import summarize
from vrl.rewards import ground_truth

WRONG = "<answer></answer>"


def _run(name, records, correct):
    responses = {r[KEY]: (f"<answer>{ground_truth(r)}</answer>" if correct(r) else WRONG) for r in records}
    return summarize(get_benchmark(name), records, responses)


def _stem(record) -> str:
    name = record["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[_-]?\d*$", "", name.removeprefix("test_"))


def _write(tmp_path, records, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


# ---- MLVU --------------------------------------------------------------------------------------------


def test_mlvu_test_task_comes_from_the_official_order_not_the_file_name(real_records):
    records = real_records("mlvu")
    movie_like = lambda r: _stem(r) in ("movie101", "entv", "cartoon")  # noqa: E731
    assert sum(map(movie_like, records)) == 108
    result = _run("mlvu", records, movie_like)
    # the plot-QA block (50 questions) is all movie/TV/cartoon clips; 58 of the 91 topic-reasoning
    # questions use such clips too: a file-name rule would call them plot QA
    assert result["counts"]["plotQA"] == 50 and result["counts"]["topic_reasoning"] == 91
    assert result["subsets"]["plotQA"] == 100.0
    assert result["subsets"]["topic_reasoning"] == pytest.approx(5800 / 91)
    assert result["overall"] == pytest.approx((100 + 5800 / 91) / 9)
    assert result["counts"] == {
        "topic_reasoning": 91, "anomaly_reco": 39, "needleQA": 60, "ego": 53, "plotQA": 50, "sportsQA": 36,
        "order": 70, "count": 60, "tutorialQA": 43,
    }  # fmt: skip


def test_mlvu_test_order_blocks_match_the_official_question_ids():
    # AR_0..AR_38, SQA_0..SQA_35, AO_0..AO_69, NQA_0..NQA_59, PQA_0..49, TR_0..90, ER_0..52, TQA_0..42, AC_0..59
    assert sum(n for _, n in TEST_ORDER) == 502
    assert [task_in_test_split({"problem_id": pid}) for pid in (1, 39, 40, 76, 146, 206, 256, 346, 347, 400, 443, 502)] == [
        "anomaly_reco", "anomaly_reco", "sportsQA", "order", "needleQA", "plotQA", "topic_reasoning",
        "topic_reasoning", "ego", "tutorialQA", "count", "count",
    ]  # fmt: skip
    assert task_in_test_split({"problem_id": 503}) is None and task_in_test_split({"problem_id": "x"}) is None
    # an explicit task (or the official question_type / question-id prefix) wins over the position
    assert task_in_test_split({"problem_id": 1, "task": "ego"}) == "ego"
    assert task_in_test_split({"problem_id": 1, "question_type": "TR"}) == "topic_reasoning"


def test_mlvu_dev_has_its_own_seven_tasks_taken_per_record(real_records):
    records = real_records("mlvu_dev")
    assert len(records) == sum(n for _, n in DEV_ORDER) == 2174
    result = _run("mlvu_dev", records, lambda r: _stem(r) == "ego")
    assert result["counts"] == {
        "topic_reasoning": 263, "anomaly_reco": 200, "needleQA": 355, "ego": 352, "plotQA": 539, "order": 259,
        "count": 206,
    }  # fmt: skip
    # 19 topic-reasoning questions use ego clips: they stay topic reasoning
    assert result["subsets"]["ego"] == 100.0
    assert result["subsets"]["topic_reasoning"] == pytest.approx(1900 / 263)
    assert result["overall"] == pytest.approx((100 + 1900 / 263) / 7)
    assert task_in_dev_split({"problem_id": 1, "question_type": "findNeedle"}) == "needleQA"
    assert task_in_dev_split({"problem_id": 1, "task": "sportsQA"}) == "needleQA"  # not a dev task: position


def test_mlvu_file_in_another_order_is_refused_naming_the_record(tmp_path, annotations_dir):
    records = json.loads((annotations_dir / "mlvu-test.json").read_text())
    records[0]["problem_id"], records[200]["problem_id"] = (
        records[200]["problem_id"],
        records[0]["problem_id"],
    )
    with pytest.raises(ValueError, match=r"record 0 \(problem_id 201\).*surveil_27.*needleQA block"):
        load_benchmark(get_benchmark("mlvu"), _write(tmp_path, records))
    records[0]["task"], records[200]["task"] = "anomaly_reco", "needleQA"  # explicit tasks win
    assert len(load_benchmark(get_benchmark("mlvu"), _write(tmp_path, records))) == 502


def test_mlvu_record_outside_the_order_needs_a_task(tmp_path, annotations_dir):
    record = json.loads((annotations_dir / "mlvu-test.json").read_text())[0]
    with pytest.raises(ValueError, match=r"outside the official test order \(1-502\); add a 'task' field"):
        load_benchmark(get_benchmark("mlvu"), _write(tmp_path, [{**record, "problem_id": 900}]))


def test_mlvu_reads_mlvu_test_json_when_mlvu_json_is_absent(tmp_path, annotations_dir):
    bench = get_benchmark("mlvu")
    assert bench.annotation_path(annotations_dir).name == "mlvu.json"
    shutil.copy(annotations_dir / "mlvu-test.json", tmp_path / "mlvu-test.json")
    assert bench.annotation_path(tmp_path).name == "mlvu-test.json"
    assert bench.annotation_path(tmp_path / "empty").name == "mlvu.json"  # the loader reports it missing


def test_reported_mlvu_score_is_compared_with_the_dev_split():
    ref = REFERENCES["Qwen2.5-VL-7B-Instruct"]
    assert ref.scores["mlvu_dev"] == 70.2 and "mlvu" not in ref.scores and "dev" in ref.notes["mlvu"]


# ---- MVBench -----------------------------------------------------------------------------------------


def test_mvbench_overall_is_correct_over_total_and_task_mean_is_a_detail(real_records):
    records = real_records("mvbench")
    result = _run("mvbench", records, lambda r: "ssv2_video" in r["path"])
    assert result["counts"]["action_antonym"] == 200 and len(records) == 3586
    assert result["overall"] == pytest.approx(100 * 200 / 3586)
    assert result["details"]["task_mean"] == pytest.approx(100 / 18)
    # the two differ on this file: action_sequence has 188 questions, object_existence 198
    assert result["counts"]["action_sequence"] == 188 and result["counts"]["object_existence"] == 198


def test_mvbench_reports_its_task_coverage_from_the_data(real_records):
    result = _run("mvbench", real_records("mvbench"), lambda r: True)
    assert result["notes"] == [
        "the evaluated records cover 18 of the 20 MVBench tasks (no records for fine_grained_pose, "
        "episodic_reasoning): overall and task_mean cover those 18 only"
    ]
    assert len(result["subsets"]) == 18


def test_mvbench_pooled_accuracy_by_hand():
    bench = get_benchmark("mvbench")
    rows = [Row({"task": "action_count"}, a) for a in (1.0, 1.0, 1.0, 0.0)] + [
        Row({"task": "state_change"}, 0.0)
    ]
    summary = bench.aggregate(rows)
    assert summary.overall == pytest.approx(60.0)  # 3 of 5 questions
    assert summary.details["task_mean"] == pytest.approx((75.0 + 0.0) / 2)
    coverage = bench.describe([r.record for r in rows])
    assert "2 of the 20 MVBench tasks" in coverage[0] and "action_sequence" in coverage[0]
    full = [{"task": t} for t in MVBENCH_TASKS]
    assert bench.describe(full) == []


# ---- STVG --------------------------------------------------------------------------------------------

GOLD = {
    "time": [0, 4],
    "boxes": {"0": [0, 0, 10, 10], "1": [0, 0, 10, 10], "2": [0, 0, 10, 10], "3": [0, 0, 10, 10]},
}


def _stvg(pid, gold, answer):
    record = {
        KEY: str(pid), "problem_id": pid, "problem": "Where is the dog?", "problem_type": "spatial-temporal grounding",
        "solution": f"<answer>{json.dumps(gold)}</answer>", "path": "v.mp4",
    }  # fmt: skip
    return record, answer


def test_stvg_reports_strict_and_easyvideor1_box_iou_by_hand():
    cases = [
        # right span, one exact box (second 0) of four: strict box IoU 1/4, EasyVideoR1's 1
        _stvg(1, GOLD, {"time": [0, 4], "boxes": {"0": [0, 0, 10, 10]}}),
        # span IoU 0.5, a half-overlapping box at second 1 and a box at second 9 (not in the ground truth)
        _stvg(2, GOLD, {"time": [0, 2], "boxes": {"1": [0, 0, 10, 5], "9": [0, 0, 10, 10]}}),
        # no box in the ground truth: the temporal IoU alone in both
        _stvg(3, {"time": [0, 4], "boxes": {}}, {"time": [2, 4]}),
        # boxes only at seconds the ground truth lacks: 0 in both
        _stvg(4, GOLD, {"time": [0, 4], "boxes": {"7": [0, 0, 10, 10]}}),
    ]
    records = [r for r, _ in cases]
    responses = {r[KEY]: f"<think>draft</think><answer>{json.dumps(a)}</answer>" for r, a in cases}
    result = summarize(get_benchmark("stvg"), records, responses)
    strict = [0.5 + 0.5 * 0.25, 0.5 * 0.5 + 0.5 * (0.5 / 4), 0.5, 0.5]
    compat = [0.5 + 0.5 * 1.0, 0.5 * 0.5 + 0.5 * 0.5, 0.5, 0.5]
    assert result["overall"] == pytest.approx(100 * sum(strict) / 4)
    assert result["subsets"]["overall_easyvideor1"] == pytest.approx(100 * sum(compat) / 4)
    assert result["subsets"]["mean_box_IoU"] == pytest.approx(100 * (0.25 + 0.125 + 0.0) / 3)
    assert result["subsets"]["mean_box_IoU_easyvideor1"] == pytest.approx(100 * (1.0 + 0.5 + 0.0) / 3)
    assert result["subsets"]["mean_tIoU"] == pytest.approx(100 * (1 + 0.5 + 0.5 + 1) / 4)
    assert "headline" in result["notes"][0]


def test_stvg_on_the_real_file_one_box_per_answer(real_records):
    records = real_records("stvg")
    responses = {}
    boxed = []
    for r in records:
        gold = json.loads(ground_truth(r))
        first = sorted(gold["boxes"], key=int)[:1]
        responses[r[KEY]] = json.dumps({"time": gold["time"], "boxes": {k: gold["boxes"][k] for k in first}})
        if gold["boxes"]:
            boxed.append(gold["boxes"])
    result = summarize(get_benchmark("stvg"), records, responses)
    assert result["subsets"]["overall_easyvideor1"] == pytest.approx(100.0)
    assert result["subsets"]["mean_box_IoU"] == pytest.approx(
        100 * sum(1 / len(b) for b in boxed) / len(boxed)
    )
    assert result["overall"] < result["subsets"]["overall_easyvideor1"]


# ---- TempCompass -------------------------------------------------------------------------------------


def _tc(pid, fmt, dim, ptype, correct):
    record = {
        "problem_id": pid, "problem": "What happens?", "problem_type": ptype, "path": f"{pid}.mp4", "dim": dim,
        "task_format": fmt,
    }  # fmt: skip
    if ptype == "multiple choice":
        record.update(options=["A. fast", "B. slow"], solution="<answer>A</answer>")
        answer = "A" if correct else "B"
    elif ptype == "boolean":
        record["solution"] = "<answer>yes</answer>"
        answer = "yes" if correct else "no"
    else:
        record["solution"] = "<answer>the man runs to the left</answer>"
        answer = "the man runs to the left" if correct else "a cat sleeps"
    return record, f"<answer>{answer}</answer>"


def _tempcompass(tmp_path, cases):
    records = load_benchmark(get_benchmark("tempcompass"), _write(tmp_path, [r for r, _ in cases], "tc.json"))
    responses = {r[KEY]: answer for r, (_, answer) in zip(records, cases)}
    return summarize(get_benchmark("tempcompass"), records, responses)


def test_tempcompass_accuracy_per_question_format(tmp_path):
    cases = [
        _tc(1, "multi-choice", "speed", "multiple choice", True),
        _tc(2, "multi-choice", "speed", "multiple choice", False),
        _tc(3, "multi-choice", "action", "multiple choice", True),
        _tc(4, "yes_no", "speed", "boolean", False),
        _tc(5, "yes_no", "order", "boolean", True),
        _tc(6, "Yes/No", "order", "boolean", True),  # official spellings are accepted
        _tc(7, "caption_matching", "direction", "multiple choice", True),
        _tc(8, "caption matching", "direction", "multiple choice", True),
        _tc(9, "captioning", "attribute_change", "open-ended", False),
    ]
    result = _tempcompass(tmp_path, cases)
    assert result["subsets"] == {
        "multi-choice": pytest.approx(200 / 3), "multi-choice/action": 100.0, "multi-choice/speed": 50.0,
        "yes_no": pytest.approx(200 / 3), "yes_no/speed": 0.0, "yes_no/order": 100.0,
        "caption_matching": 100.0, "caption_matching/direction": 100.0,
        "captioning": 0.0, "captioning/attribute_change": 0.0,
    }  # fmt: skip
    # the headline is the multi-choice accuracy, not the pooled 6 of 9
    assert result["overall"] == pytest.approx(200 / 3)
    assert result["counts"]["yes_no"] == 3 and "notes" not in result


def test_tempcompass_without_multi_choice_says_what_overall_is(tmp_path):
    cases = [
        _tc(1, "yes_no", "speed", "boolean", True),
        _tc(2, "caption_matching", "order", "multiple choice", False),
    ]
    result = _tempcompass(tmp_path, cases)
    assert result["overall"] == 50.0 and "no multi-choice records" in result["notes"][0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"task_format": "essay"}, "task_format='essay'; expected one of: multi-choice, yes_no"),
        ({"task_format": "yes_no"}, "task_format='yes_no' with problem_type='multiple choice'; yes_no records are boolean"),
        ({"dim": "color"}, "dim='color'; expected one of: action, direction, speed, order, attribute_change"),
        ({"task_format": None, "dim": "speed"}, "task_format=None"),
    ],
)  # fmt: skip
def test_tempcompass_bad_format_is_refused(tmp_path, change, message):
    record, _ = _tc(1, "multi-choice", "speed", "multiple choice", True)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_benchmark(get_benchmark("tempcompass"), _write(tmp_path, [{**record, **change}]))


# ---- Video-MMMU --------------------------------------------------------------------------------------


def test_videommmu_reads_the_file_with_images_when_present(tmp_path, annotations_dir, real_records):
    bench = get_benchmark("videommmu")
    assert bench.annotation_path(annotations_dir).name == "videommmu_with_image.json"
    records = real_records("videommmu")
    with_image = [r for r in records if r.get("image_path")]
    assert len(with_image) == 300 and {r["problem_id"] for r in with_image} == set(range(1, 301))
    shutil.copy(annotations_dir / "videommmu.json", tmp_path / "videommmu.json")
    assert bench.annotation_path(tmp_path).name == "videommmu.json"  # the fallback
    plain = load_benchmark(bench, bench.annotation_path(tmp_path))
    result = summarize(bench, plain, {r[KEY]: r["solution"] for r in plain})
    assert "the model sees the video alone" in result["notes"][0]
    assert "notes" not in summarize(bench, records, {r[KEY]: r["solution"] for r in records})


def test_videommmu_prompt_says_the_image_follows_the_video(real_records):
    bench = get_benchmark("videommmu")
    records = real_records("videommmu")
    adaptation = next(r for r in records if r.get("image_path"))
    text = bench.render(adaptation, "direct")
    assert text.startswith(IMAGE_HINT + "\n") and "<image 1>" in text
    other = next(r for r in records if not r.get("image_path"))
    assert IMAGE_HINT not in bench.render(other, "direct")


# ---- MMVU --------------------------------------------------------------------------------------------


def test_mmvu_scores_all_1000_questions_and_the_reference_compares_with_them(real_records, annotations_dir):
    bench = get_benchmark("mmvu")
    assert bench.annotation_file == "mmvu-all.json"
    records = real_records("mmvu")
    mc_only = json.loads((annotations_dir / "mmvu.json").read_text())
    assert len(records) == 1000 and len(mc_only) == 625
    # every multiple-choice-only answer right, every open-ended one wrong: 625 / 1000, not 100
    result = _run("mmvu", records, lambda r: r["problem_type"] == "multiple choice")
    assert result["overall"] == pytest.approx(62.5)
    assert result["subsets"] == {"multiple choice": 100.0, "open-ended": 0.0}
    assert result["counts"] == {"multiple choice": 625, "open-ended": 375}
    assert {(r["path"], r["problem"]) for r in records if r["problem_type"] == "multiple choice"} == {
        (r["path"], r["problem"]) for r in mc_only
    }
    ref = REFERENCES["Qwen2.5-VL-7B-Instruct"]
    assert ref.scores["mmvu"] == 50.1 and "1,000" in ref.notes["mmvu"]


# ---- report ------------------------------------------------------------------------------------------


def test_report_shows_the_notes(real_records):
    entry = _run("mvbench", real_records("mvbench"), lambda r: True)
    text = render_markdown({"mvbench": entry}, {"model": "m", "settings": {}}, None)
    assert "> the evaluated records cover 18 of the 20 MVBench tasks" in text
    assert "| _task_mean_ | 100.0 |" in text
