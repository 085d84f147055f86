"""VideoMathQA: 420 five-option questions (MCQ) and, for each, four two-option variants (multi-binary).

Official numbers: MCQ accuracy (the headline ``overall``) and MBin accuracy, where a question counts only
when all of its binary variants are answered correctly. Subsets: ``mcq``, ``mbin``, the ten categories
and the three video lengths (on the MCQ records). Binary variants share the ``problem_id`` of their
question and are told apart by ``mbinary_id``. Options are stored as the text of a Python list.
"""

from __future__ import annotations

from eval_harness.aggregate import Row, Summary, field_of, group, micro, pct
from eval_harness.benchmarks.base import Benchmark

CATEGORIES = (
    "Arithmetic",
    "Chart",
    "Counting",
    "Geometry Angle",
    "Geometry Area",
    "Geometry Length",
    "Graph Theory",
    "Puzzle",
    "Statistics",
    "Topology",
)
LENGTHS = ("short", "medium", "long")
_SECONDS = {"short": 60.0, "medium": 300.0, "long": 1200.0}


def _is_binary(record: dict) -> bool:
    return record.get("mbinary_id") not in (None, "")


def aggregate(rows: list[Row]) -> Summary:
    mcq = [r for r in rows if not _is_binary(r.record)]
    binary = [r for r in rows if _is_binary(r.record)]
    summary = micro(
        mcq,
        {"category": field_of("category"), "length": field_of("length")},
        {"category": CATEGORIES, "length": LENGTHS},
    )
    subsets = {"mcq": summary.overall}
    counts = {"mcq": len(mcq)}
    if binary:
        questions = group(binary, lambda r: str(r["problem_id"]))
        subsets["mbin"] = pct(float(all(m.accuracy >= 1.0 for m in ms)) for ms in questions.values())
        counts["mbin"] = len(questions)
    summary.subsets = {**subsets, **summary.subsets}
    summary.counts = {**counts, **summary.counts}
    return summary


BENCHMARK = Benchmark(
    name="videomathqa",
    title="VideoMathQA",
    category="stem",
    annotation_file="videomathqa.jsonl",
    problem_types=("multiple choice",),
    metric="MCQ accuracy (overall); MBin accuracy (all binary variants right) as subset 'mbin'",
    aggregate=aggregate,
    key_field="mbinary_id",
    aliases=("video_math_qa",),
    typical_duration_s=400.0,
    duration=lambda record: _SECONDS.get(record.get("length", "")),
)
