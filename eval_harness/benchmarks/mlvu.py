"""MLVU (test split, multiple choice): M-Avg = the mean of the per-task accuracies.

The records carry no task field; the video file name tells the task (``test_needle_3.mp4`` → needle QA).
Plot QA uses movie, TV and cartoon clips; topic reasoning the remaining short documentary clips. A record
may also name its task in ``task`` (one of :data:`TASKS`), which wins.
"""

from __future__ import annotations

import re
from typing import Any

from eval_harness.aggregate import Row, Summary, macro
from eval_harness.benchmarks.base import Benchmark

TASKS = (
    "topic_reasoning",
    "anomaly_reco",
    "needleQA",
    "ego",
    "plotQA",
    "sportsQA",
    "order",
    "count",
    "tutorialQA",
)
_BY_PREFIX = {
    "surveil": "anomaly_reco",
    "needle": "needleQA",
    "ego": "ego",
    "order": "order",
    "count": "count",
    "sports": "sportsQA",
    "tutorial": "tutorialQA",
    "movie101": "plotQA",
    "entv": "plotQA",
    "en_tv": "plotQA",
    "cartoon": "plotQA",
}
_STEM = re.compile(r"^(?:test_)?(.*?)[_-]?\d*$")


def task_of(record: dict[str, Any]) -> str:
    if record.get("task") in TASKS:
        return record["task"]
    name = str(record.get("path", "")).rsplit("/", 1)[-1].rsplit(".", 1)[0]
    match = _STEM.match(name)
    prefix = match.group(1) if match else name
    return _BY_PREFIX.get(prefix, "topic_reasoning")


def aggregate(rows: list[Row]) -> Summary:
    return macro(rows, task_of, TASKS)


BENCHMARK = Benchmark(
    name="mlvu",
    title="MLVU",
    category="long",
    annotation_file="mlvu.json",
    problem_types=("multiple choice",),
    metric="M-Avg: mean of the per-task accuracies (test split)",
    aggregate=aggregate,
    typical_duration_s=930.0,
)
