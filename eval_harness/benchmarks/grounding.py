"""Grounding benchmarks: Charades-STA (temporal) and STVG (spatio-temporal).

Charades-STA reports ``overall`` = mIoU and the recall at IoU thresholds 0.3 / 0.5 / 0.7 (a record counts
when its IoU ≥ θ). Its records give only the event description, so the prompt asks for the moment.

STVG scores 0.5 · temporal IoU + 0.5 · box IoU per record (records whose ground truth has no box score the
temporal IoU alone) and reports it two ways, which differ only in the box part:

- ``overall`` (ours, the headline): the training reward's box IoU, averaged over every ground-truth
  second, a second the answer leaves without a box scoring 0;
- ``overall_easyvideor1`` (subset): EasyVideoR1's evaluation script, which averages the box IoU over the
  seconds present in both the answer and the ground truth (0 when none), as its published STVG scores do.

Ours is the headline because the other number does not measure tracking: an answer with one right box and
nothing for the other seconds scores a perfect box IoU, so answers that box fewer seconds look better, and
the number is not comparable between models that box different numbers of seconds. Training keeps the
strict reward too, so the evaluation measures what is optimised. ``overall_easyvideor1`` is there to
compare with EasyVideoR1's tables. Seconds are matched as whole numbers, as the reward matches them.
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, pct
from eval_harness.benchmarks.base import Benchmark
from vrl.rewards import answer_instruction, extract_answer, ground_truth
from vrl.rewards.tasks.grounding import Box, as_track, iou_2d, parse_grounding_object

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


def _track(text: str) -> dict[int, Box]:
    obj = parse_grounding_object(text) or {}
    return as_track(obj.get("boxes")) or {}


def box_iou_common(response: str, gold: dict[int, Box]) -> float:
    """EasyVideoR1's box IoU: the mean over the seconds boxed in both answer and ground truth (0 if none).

    The answer is read as the reward reads it (:func:`vrl.rewards.extract_answer`)."""
    pred = _track(extract_answer(response)) if response else {}
    common = [s for s in pred if s in gold]
    return sum(iou_2d(pred[s], gold[s]) for s in common) / len(common) if common else 0.0


def aggregate_stvg(rows: list[Row]) -> Summary:
    summary = Summary(overall=pct(r.accuracy for r in rows))
    tious = [float(r.scores.get("tiou", 0.0)) for r in rows]
    golds = [_track(ground_truth(r.record)) for r in rows]
    boxed = [i for i, gold in enumerate(golds) if gold]
    common = {i: box_iou_common(rows[i].response, golds[i]) for i in boxed}
    compat = [0.5 * tious[i] + 0.5 * common[i] if i in common else tious[i] for i in range(len(rows))]
    summary.subsets["mean_tIoU"] = pct(tious)
    summary.counts["mean_tIoU"] = len(rows)
    if boxed:
        summary.subsets["mean_box_IoU"] = pct(float(rows[i].scores.get("miou", 0.0)) for i in boxed)
        summary.counts["mean_box_IoU"] = len(boxed)
    summary.subsets["overall_easyvideor1"] = pct(compat)
    summary.counts["overall_easyvideor1"] = len(rows)
    if boxed:
        summary.subsets["mean_box_IoU_easyvideor1"] = pct(common.values())
        summary.counts["mean_box_IoU_easyvideor1"] = len(boxed)
    summary.notes.append(
        "overall (the headline) averages the box IoU over every ground-truth second, a second without a "
        "predicted box scoring 0; overall_easyvideor1 averages it over the seconds boxed in both answer and "
        "ground truth, as EasyVideoR1's reported STVG scores do (compare with those only)"
    )
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
        metric=(
            "mean of 0.5 * temporal IoU + 0.5 * mean box IoU over the ground-truth seconds (missing seconds "
            "count 0); EasyVideoR1's variant (box IoU over the seconds present in both) as overall_easyvideor1"
        ),
        aggregate=aggregate_stvg,
        aliases=("hcstvg", "vidstg"),
        typical_duration_s=20.0,
    ),
]
