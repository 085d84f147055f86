"""The toy suite (``vrl.toy``) as a benchmark: its validation split, accuracy per task family.

Its annotation file is the suite's ``val.jsonl``, generated on first use from the ``toy.*`` settings (the
same defaults as the trainer's, so a trained tiny model is evaluated on the split it was validated on).
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, by_problem_type, field_of, micro
from eval_harness.benchmarks.base import Benchmark
from vrl.toy.spec import PROBLEM_TYPES


def aggregate(rows: list[Row]) -> Summary:
    summary = micro(rows, {"task": field_of("task")})
    summary.details = by_problem_type(rows)
    return summary


def _duration(record: dict[str, Any]) -> float | None:
    scene = record.get("scene")
    if isinstance(scene, dict) and isinstance(scene.get("duration"), (int, float)):
        return float(scene["duration"])
    return None


EXAMPLE = {
    "problem_id": "toy-val-00000",
    "problem": "What color is the circle in the video?",
    "problem_type": "multiple choice",
    "options": ["A. blue", "B. yellow", "C. green", "D. red"],
    "solution": "<answer>B</answer>",
    "path": "videos/val-00000.mp4",
    "data_type": "video",
    "data_source": "toy",
    "task": "color",
}

BENCHMARK = Benchmark(
    name="toy",
    title="Toy suite",
    category="toy",
    annotation_file="val.jsonl",
    problem_types=PROBLEM_TYPES,
    metric="accuracy; subsets by task family",
    aggregate=aggregate,
    typical_duration_s=3.0,
    duration=_duration,
    example=EXAMPLE,
)
