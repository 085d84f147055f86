"""Open-ended reasoning benchmarks: VCR-Bench and VideoReasonBench.

Both are officially judged by an LLM. Here open-ended answers are scored by rule (exact match for short
references, ROUGE for long ones) unless the second-stage judge is configured (``judge.model=...``), whose
yes/no verdict then replaces the rule for those records. Multiple-choice records are always exact.
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, micro
from eval_harness.benchmarks.base import Benchmark
from vrl.rewards import canonical_type

#: VideoReasonBench's six demonstration kinds (the first folder of each video path)
DEMOS = ("card", "chip", "cup", "file_sys", "grid", "hrd")


def _demo(record: dict[str, Any]) -> str | None:
    head = str(record.get("path", "")).lstrip("./").split("/", 1)[0]
    return head or None


def _vcr(rows: list[Row]) -> Summary:
    return micro(rows, {"type": lambda r: canonical_type(r["problem_type"])})


def _videoreason(rows: list[Row]) -> Summary:
    return micro(rows, {"demo": _demo}, {"demo": DEMOS})


BENCHMARKS = [
    Benchmark(
        name="vcrbench",
        title="VCR-Bench",
        category="reasoning",
        annotation_file="vcrbench.json",
        problem_types=("multiple choice", "open-ended"),
        metric="accuracy (open-ended: rule, or the LLM judge); subsets by problem type",
        aggregate=_vcr,
        judge=True,
        aliases=("vcr_bench",),
        typical_duration_s=150.0,
    ),
    Benchmark(
        name="videoreasonbench",
        title="VideoReasonBench",
        category="reasoning",
        annotation_file="videoreasonbench.json",
        problem_types=("open-ended",),
        metric="accuracy (rule, or the LLM judge); subsets by demonstration kind",
        aggregate=_videoreason,
        judge=True,
        aliases=("video_reason_bench",),
        typical_duration_s=60.0,
    ),
]
