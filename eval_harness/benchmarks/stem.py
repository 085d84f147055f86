"""STEM benchmarks: MMVU and Video-MMMU (accuracy; numbers compared after rounding by the reward).

MMVU's open-ended questions (``mmvu-all.json``) are scored by rule here and officially by an LLM judge
(``judge.model=...``). Video-MMMU has three tracks of 300 questions; the EasyVideoR1 records do not name
the track, but keep the official order (ids 1–300 adaptation, 301–600 comprehension, 601–900
perception), which is used unless a record carries a ``track`` field.
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, micro
from eval_harness.benchmarks.base import Benchmark
from vrl.rewards import canonical_type

TRACKS = ("Perception", "Comprehension", "Adaptation")
_BY_BLOCK = {0: "Adaptation", 1: "Comprehension", 2: "Perception"}


def track_of(record: dict[str, Any]) -> str | None:
    if record.get("track") in TRACKS:
        return record["track"]
    pid = record.get("problem_id")
    if isinstance(pid, int) and 1 <= pid <= 900:
        return _BY_BLOCK[(pid - 1) // 300]
    return None


def _by_type(rows: list[Row]) -> Summary:
    return micro(rows, {"type": lambda r: canonical_type(r["problem_type"])})


def _videommmu(rows: list[Row]) -> Summary:
    return micro(rows, {"track": track_of}, {"track": TRACKS})


BENCHMARKS = [
    Benchmark(
        name="mmvu",
        title="MMVU",
        category="stem",
        annotation_file="mmvu.json",
        problem_types=("multiple choice", "open-ended"),
        metric="accuracy (open-ended: rule, or the LLM judge); subsets by problem type",
        aggregate=_by_type,
        judge=True,
        typical_duration_s=50.0,
    ),
    Benchmark(
        name="videommmu",
        title="Video-MMMU",
        category="stem",
        annotation_file="videommmu.json",
        problem_types=("multiple choice", "numerical"),
        metric="accuracy; subsets by track (Perception, Comprehension, Adaptation)",
        aggregate=_videommmu,
        aliases=("video_mmmu",),
        typical_duration_s=500.0,
    ),
]
