"""Golden aggregation tests on the real annotation files: all correct, all wrong, and mixtures whose
official numbers can be computed by hand (each checks the benchmark's definition of its metric)."""

from __future__ import annotations

import json

import pytest

from eval_harness.aggregate import Row, macro, micro
from eval_harness.benchmarks import get_benchmark
from eval_harness.records import KEY
from eval_harness.scoring import MissingPredictions, summarize
from vrl.rewards import ground_truth

WITH_FILE = [
    "videomme", "mvbench", "motionbench", "lvbench", "longvideobench", "mlvu", "video_holmes", "minerva",
    "vcrbench", "videoreasonbench", "longvideo_reason", "mmvu", "videommmu", "videomathqa", "vsibench",
    "charades_sta", "stvg", "ovobench", "livesports3k_qa", "mlvu_dev",
]  # fmt: skip
WRONG = "<answer></answer>"  # an empty answer: wrong for every type


def _right(record):
    """The ground truth as an answer (Charades-STA's solutions hold it inside <think>, which is no answer)."""
    return f"<answer>{ground_truth(record)}</answer>"


def _run(name, records, correct, allow_partial=False):
    """Summarize with the solution as the answer where ``correct(record)`` (else a wrong answer)."""
    responses = {r[KEY]: (_right(r) if correct(r) else WRONG) for r in records}
    return summarize(get_benchmark(name), records, responses, allow_partial=allow_partial)


def _pct(num, den):
    return 100.0 * num / den


@pytest.mark.parametrize("name", WITH_FILE)
def test_all_correct_is_100_everywhere(name, real_records):
    result = _run(name, real_records(name), lambda r: True)
    assert result["overall"] == pytest.approx(100.0)
    assert result["num_scored"] == len(real_records(name)) and result["num_missing"] == 0
    for subset, value in result["subsets"].items():
        assert value == pytest.approx(100.0), subset


@pytest.mark.parametrize("name", WITH_FILE)
def test_all_wrong_is_0_everywhere(name, real_records):
    result = _run(name, real_records(name), lambda r: False)
    assert result["overall"] == 0.0
    assert all(v == 0.0 for v in result["subsets"].values()), result["subsets"]


def test_videomme_subsets_are_duration_domain_and_task_type(real_records):
    records = real_records("videomme")
    result = _run("videomme", records, lambda r: r["duration"] == "short")
    assert result["overall"] == pytest.approx(100 / 3)
    assert set(result["subsets"]) == {r["duration"] for r in records} | {r["domain"] for r in records} | {
        r["task_type"] for r in records
    }
    assert (result["subsets"]["short"], result["subsets"]["medium"], result["subsets"]["long"]) == (100, 0, 0)
    knowledge = [r for r in records if r["domain"] == "Knowledge"]
    expect = _pct(sum(r["duration"] == "short" for r in knowledge), len(knowledge))
    assert result["subsets"]["Knowledge"] == pytest.approx(expect, abs=1e-3)
    assert len([k for k in result["subsets"] if k not in ("short", "medium", "long")]) == 6 + 12


def test_vsibench_overall_is_the_mean_of_8_tasks_with_direction_averaged(real_records):
    records = real_records("vsibench")
    result = _run(
        "vsibench",
        records,
        lambda r: r["original_question_type"] in ("object_counting", "object_rel_direction_easy"),
    )
    assert list(result["subsets"]) == [
        "object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation",
        "object_rel_distance", "object_rel_direction", "route_planning", "obj_appearance_order",
    ]  # fmt: skip
    assert result["subsets"]["object_rel_direction"] == pytest.approx(100 / 3, abs=1e-3)
    assert result["overall"] == pytest.approx((100 + 100 / 3) / 8, abs=1e-3)
    # a record-weighted mean would be far off: easy direction records are only 217 of 968
    assert result["details"]["object_rel_direction_easy"] == 100.0


def test_vsibench_numbers_score_by_mean_relative_accuracy(real_records):
    counting = [r for r in real_records("vsibench") if r["original_question_type"] == "object_counting"]
    record = next(r for r in counting if ground_truth(r) == "4")
    # |3 - 4| / 4 = 0.25: within 1 - θ for θ ∈ {0.50, …, 0.75}: 6 of 10 thresholds
    result = summarize(get_benchmark("vsibench"), [record], {record[KEY]: "<answer>3</answer>"})
    assert result["subsets"]["object_counting"] == pytest.approx(60.0)


def test_mlvu_m_avg_is_the_mean_over_tasks(real_records):
    records = real_records("mlvu")
    result = _run("mlvu", records, lambda r: "needle" in r["path"])
    assert len(result["subsets"]) == 9 and result["subsets"]["needleQA"] == 100.0
    assert result["overall"] == pytest.approx(100 / 9, abs=1e-3)  # micro accuracy would be 60 / 502


def test_mvbench_overall_is_the_accuracy_over_all_questions(real_records):
    records = real_records("mvbench")
    result = _run("mvbench", records, lambda r: "ssv2_video" in r["path"])
    assert result["subsets"]["action_antonym"] == 100.0
    assert result["overall"] == pytest.approx(_pct(200, len(records)), abs=1e-3)
    assert result["details"]["task_mean"] == pytest.approx(100 / len(result["subsets"]), abs=1e-3)
    assert result["counts"]["action_antonym"] == 200


def test_motionbench_categories(real_records):
    records = real_records("motionbench")
    result = _run("motionbench", records, lambda r: r["original_question_type"] == "Camera Motion")
    assert len(result["subsets"]) == 6 and result["subsets"]["Camera Motion"] == 100.0
    cm = sum(r["original_question_type"] == "Camera Motion" for r in records)
    assert result["overall"] == pytest.approx(_pct(cm, len(records)), abs=1e-3)


def test_ovobench_overall_is_the_mean_of_three_modes(real_records):
    records = real_records("ovobench")
    result = _run("ovobench", records, lambda r: r["ovo_task"] == "REC")
    assert result["subsets"]["REC"] == 100.0 and result["subsets"]["SSR"] == 0.0
    assert result["subsets"]["forward"] == pytest.approx(100 / 3, abs=1e-3)
    assert result["subsets"]["backward"] == 0.0 and result["subsets"]["realtime"] == 0.0
    assert result["overall"] == pytest.approx(100 / 9, abs=1e-3)
    assert len([k for k in result["subsets"] if k.isupper()]) == 12


def test_charades_miou_and_recall_at_thresholds(real_records):
    records = real_records("charades_sta")
    responses = {}
    for i, r in enumerate(records):
        start, end = json.loads(ground_truth(r).split("</think>")[0].replace("<think>", ""))["time"]
        if i % 2:  # IoU 0.6: a prefix of 60% of the gold span
            end = start + 0.6 * (end - start)
        responses[r[KEY]] = f'<answer>{{"time": [{start}, {end}]}}</answer>'
    result = summarize(get_benchmark("charades_sta"), records, responses)
    half = len(records) // 2
    assert set(result["subsets"]) == {"mIoU", "R@0.3", "R@0.5", "R@0.7"}
    assert (
        result["overall"]
        == result["subsets"]["mIoU"]
        == pytest.approx((len(records) - half * 0.4) / len(records) * 100, abs=1e-3)
    )
    assert result["subsets"]["R@0.3"] == result["subsets"]["R@0.5"] == 100.0
    assert result["subsets"]["R@0.7"] == pytest.approx(_pct(len(records) - half, len(records)), abs=1e-3)


def test_charades_recall_counts_iou_equal_to_threshold():
    rows = [Row({}, 0.5, {"iou": 0.5}), Row({}, 0.3, {"iou": 0.3 - 1e-12})]
    result = get_benchmark("charades_sta").aggregate(rows)
    assert result.subsets["R@0.5"] == 50.0 and result.subsets["R@0.3"] == 100.0


def test_stvg_half_temporal_half_boxes(real_records):
    records = real_records("stvg")
    responses = {}
    for r in records:
        time = json.loads(ground_truth(r))["time"]
        responses[r[KEY]] = json.dumps({"time": time, "boxes": {}})  # right span, no box
    result = summarize(get_benchmark("stvg"), records, responses)
    no_box = sum(1 for r in records if not json.loads(ground_truth(r))["boxes"])
    assert no_box > 0
    assert result["subsets"]["mean_tIoU"] == pytest.approx(100.0)
    assert result["subsets"]["mean_box_IoU"] == result["subsets"]["mean_box_IoU_easyvideor1"] == 0.0
    assert (
        result["overall"]
        == result["subsets"]["overall_easyvideor1"]
        == pytest.approx(_pct(0.5 * (len(records) - no_box) + no_box, len(records)), abs=1e-3)
    )


def test_videomathqa_mcq_and_multi_binary(real_records):
    records = real_records("videomathqa")
    first_pid = records[0]["problem_id"]
    binaries_seen: dict = {}

    def correct(r):
        if not r.get("mbinary_id"):
            return True
        binaries_seen[r["problem_id"]] = binaries_seen.get(r["problem_id"], 0) + 1
        return r["problem_id"] == first_pid or binaries_seen[r["problem_id"]] > 1  # miss one binary each

    result = _run("videomathqa", records, correct)
    assert result["overall"] == result["subsets"]["mcq"] == 100.0
    assert result["counts"]["mcq"] == result["counts"]["mbin"] == 420
    assert result["subsets"]["mbin"] == pytest.approx(100 / 420, abs=1e-3)


def test_videommmu_tracks(real_records):
    records = real_records("videommmu")
    result = _run("videommmu", records, lambda r: r["problem_id"] > 600)
    assert result["subsets"] == {"Perception": 100.0, "Comprehension": 0.0, "Adaptation": 0.0}


def test_livesports_question_types_and_duplicate_ids(real_records):
    records = real_records("livesports3k_qa")
    result = _run("livesports3k_qa", records, lambda r: r["q_type_livesports"] == "Who")
    assert result["subsets"]["Who"] == 100.0 and result["subsets"]["What"] == 0.0
    assert result["num_scored"] == len(records) == 1174  # five ids are shared by two or three questions


def test_missing_predictions_refused_unless_partial(real_records):
    records = real_records("mlvu")
    responses = {r[KEY]: r["solution"] for r in records[:100]}
    with pytest.raises(MissingPredictions, match="402 of 502"):
        summarize(get_benchmark("mlvu"), records, responses)
    result = summarize(get_benchmark("mlvu"), records, responses, allow_partial=True)
    assert (result["num_scored"], result["num_missing"], result["overall"]) == (100, 402, 100.0)


def test_micro_and_macro_helpers():
    rows = [Row({"t": "a"}, 1.0), Row({"t": "a"}, 1.0), Row({"t": "b"}, 0.0)]
    assert micro(rows, {"t": lambda r: r["t"]}).overall == pytest.approx(200 / 3)
    summary = macro(rows, lambda r: r["t"])
    assert summary.overall == 50.0 and summary.subsets == {"a": 100.0, "b": 0.0}
    assert macro([], lambda r: r["t"]).overall == 0.0
