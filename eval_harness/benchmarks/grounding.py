"""Grounding benchmarks: Charades-STA (temporal) and STVG (spatio-temporal).

Charades-STA reports ``overall`` = mIoU and the recall at IoU thresholds 0.3 / 0.5 / 0.7 (a record counts
when its IoU ≥ θ). Its records give only the event description, so the prompt asks for the moment. STVG
scores 0.5 · temporal IoU + 0.5 · mean box IoU per record (the reward; records whose ground truth has no
box score the temporal IoU alone) and reports the two parts' means as subsets.
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, pct
from eval_harness.benchmarks.base import Benchmark
from vrl.rewards import answer_instruction, ground_truth
from vrl.rewards.tasks.grounding import as_track, parse_grounding_object

RECALL_THRESHOLDS = (0.3, 0.5, 0.7)
#: IoUs are floats: a span matching a threshold exactly must count
_EPS = 1e-9


def render_charades(record: dict[str, Any], style: str) -> str:
    query = str(record.get("problem", "")).strip().rstrip(".")
    lead = (
        f'Find the moment in the video when this happens: "{query}". '
        "Give its start and end time in seconds from the beginning of the video."
    )
    return f"{lead}\n{answer_instruction(record['problem_type'], style)}"


def _iou(row: Row) -> float:
    return float(row.scores.get("iou", row.accuracy))


def aggregate_charades(rows: list[Row]) -> Summary:
    ious = [_iou(r) for r in rows]
    summary = Summary(overall=pct(ious))
    summary.subsets["mIoU"] = summary.overall
    for theta in RECALL_THRESHOLDS:
        summary.subsets[f"R@{theta}"] = pct(float(iou >= theta - _EPS) for iou in ious)
    summary.counts = {name: len(rows) for name in summary.subsets}
    return summary


def _has_boxes(record: dict[str, Any]) -> bool:
    obj = parse_grounding_object(ground_truth(record)) or {}
    return bool(as_track(obj.get("boxes")))


def aggregate_stvg(rows: list[Row]) -> Summary:
    summary = Summary(overall=pct(r.accuracy for r in rows))
    with_boxes = [r for r in rows if _has_boxes(r.record)]
    summary.subsets["mean_tIoU"] = pct(float(r.scores.get("tiou", 0.0)) for r in rows)
    summary.counts["mean_tIoU"] = len(rows)
    if with_boxes:
        summary.subsets["mean_box_IoU"] = pct(float(r.scores.get("miou", 0.0)) for r in with_boxes)
        summary.counts["mean_box_IoU"] = len(with_boxes)
    return summary


BENCHMARKS = [
    Benchmark(
        name="charades_sta",
        title="Charades-STA",
        category="grounding",
        annotation_file="charades_sta.json",
        problem_types=("temporal grounding",),
        metric="mIoU; R@0.3/0.5/0.7 = share of records with IoU >= threshold",
        aggregate=aggregate_charades,
        render=render_charades,
        aliases=("charades", "charadessta", "charades-sta"),
        typical_duration_s=30.0,
    ),
    Benchmark(
        name="stvg",
        title="STVG",
        category="grounding",
        annotation_file="stvg.json",
        problem_types=("spatial-temporal grounding",),
        metric="mean of 0.5 * temporal IoU + 0.5 * mean box IoU over the ground-truth seconds",
        aggregate=aggregate_stvg,
        aliases=("hcstvg", "vidstg"),
        typical_duration_s=20.0,
    ),
]
