"""VSI-Bench: multiple choice by exact match, numbers by mean relative accuracy (MRA, in vrl.rewards).

Official overall: the unweighted mean of the 8 task scores, where ``object_rel_direction`` is itself the
mean of its easy, medium and hard variants (those three are reported as details).
"""

from __future__ import annotations

from eval_harness.aggregate import Row, Summary, group, mean, pct
from eval_harness.benchmarks.base import Benchmark, field_in

#: the 8 official tasks, in the paper's order
TASKS = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
    "object_rel_distance",
    "object_rel_direction",
    "route_planning",
    "obj_appearance_order",
)
DIRECTION_LEVELS = ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard")
QUESTION_TYPES = tuple(t for t in TASKS if t != "object_rel_direction") + DIRECTION_LEVELS


def aggregate(rows: list[Row]) -> Summary:
    by_type = group(rows, lambda r: r.get("original_question_type"), QUESTION_TYPES)
    summary = Summary(overall=0.0)
    for task in TASKS:
        if task == "object_rel_direction":
            levels = [lvl for lvl in DIRECTION_LEVELS if lvl in by_type]
            if not levels:
                continue
            for lvl in levels:
                summary.details[lvl] = pct(r.accuracy for r in by_type[lvl])
            summary.subsets[task] = mean(summary.details[lvl] for lvl in levels)
            summary.counts[task] = sum(len(by_type[lvl]) for lvl in levels)
        elif task in by_type:
            summary.subsets[task] = pct(r.accuracy for r in by_type[task])
            summary.counts[task] = len(by_type[task])
    summary.overall = mean(summary.subsets.values())
    return summary


BENCHMARK = Benchmark(
    name="vsibench",
    title="VSI-Bench",
    category="spatial",
    annotation_file="vsibench.json",
    problem_types=("multiple choice", "regression"),
    metric="mean of the 8 task scores (accuracy / MRA); rel_direction = mean of easy, medium, hard",
    aggregate=aggregate,
    checks=(field_in("original_question_type", QUESTION_TYPES),),
    required_fields=("original_question_type",),
    aliases=("vsi_bench", "vsi"),
    typical_duration_s=120.0,
)
