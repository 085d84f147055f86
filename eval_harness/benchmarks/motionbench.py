"""MotionBench: accuracy over all questions, and per motion category (the six of the paper)."""

from __future__ import annotations

from eval_harness.aggregate import Row, Summary, field_of, micro
from eval_harness.benchmarks.base import Benchmark, field_in

#: paper abbreviations MR, LM, CM, MO, AO, RC
CATEGORIES = (
    "Motion Recognition",
    "Location-related Motion",
    "Camera Motion",
    "Motion-related Objects",
    "Action Order",
    "Repetition Count",
)


def aggregate(rows: list[Row]) -> Summary:
    return micro(rows, {"category": field_of("original_question_type")}, {"category": CATEGORIES})


BENCHMARK = Benchmark(
    name="motionbench",
    title="MotionBench",
    category="general",
    annotation_file="motionbench.json",
    problem_types=("multiple choice",),
    metric="accuracy; subsets by motion category (original_question_type)",
    aggregate=aggregate,
    checks=(field_in("original_question_type", CATEGORIES),),
    required_fields=("original_question_type",),
    aliases=("motion_bench",),
    typical_duration_s=10.0,
)
