"""Benchmarks scored by plain accuracy, optionally split by one record field (declarative specs).

LVBench, LongVideoBench, Video-Holmes, MINERVA and LongVideo-Reason ship records without a sub-category
field, so only their overall accuracy is reported. ODV-Bench and Video-MME-v2 are not in the EasyVideoR1
release: their expected record format is in FORMAT.md and in each ``example`` below. TempCompass, scored
per question format, has its own module.
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, field_of, group, micro, pct
from eval_harness.benchmarks.base import Benchmark

MC = ("multiple choice",)


def _accuracy_by(name: str, order: tuple[str, ...] = ()):
    def aggregate(rows: list[Row]) -> Summary:
        return micro(rows, {name: field_of(name)}, {name: order})

    return aggregate


def _livesports(rows: list[Row]) -> Summary:
    summary = micro(rows, {"q_type": field_of("q_type_livesports")}, {"q_type": ("What", "Who", "When")})
    for value, members in group(rows, lambda r: {0: "no_ocr", 1: "ocr"}.get(r.get("ocr_livesports"))).items():
        summary.details[value] = pct(m.accuracy for m in members)
    return summary


def _clip_duration(record: dict[str, Any]) -> float | None:
    """LiveSports clips are named ``<id>_<start>_<end>.mp4``."""
    parts = str(record.get("path", "")).rsplit(".", 1)[0].split("_")
    try:
        start, end = float(parts[-2]), float(parts[-1])
    except (IndexError, ValueError):
        return None
    return end - start if end > start else None


def _videomme_v2(rows: list[Row]) -> Summary:
    summary = micro(rows, {"level": lambda r: f"level_{r['level']}" if "level" in r else None})
    groups = group(rows, field_of("group_id"))
    if groups:
        # a consistency detail, not the official non-linear group score (see FORMAT.md)
        summary.details["groups_all_correct"] = pct(
            float(all(m.accuracy >= 1.0 for m in members)) for members in groups.values()
        )
    return summary


def _mc_example(**extra: Any) -> dict[str, Any]:
    return {
        "problem_id": 1,
        "problem": "What does the man do right after he opens the door?",
        "problem_type": "multiple choice",
        "options": ["A. He sits down.", "B. He waves.", "C. He turns on the light.", "D. He leaves."],
        "solution": "<answer>C</answer>",
        "path": "videos/example.mp4",
        "data_type": "video",
        **extra,
    }


BENCHMARKS = [
    Benchmark(
        name="lvbench",
        title="LVBench",
        category="long",
        annotation_file="lvbench.json",
        problem_types=MC,
        metric="accuracy",
        typical_duration_s=4100.0,
    ),
    Benchmark(
        name="longvideobench",
        title="LongVideoBench",
        category="long",
        annotation_file="longvideobench.json",
        problem_types=MC,
        metric="accuracy (validation split)",
        aliases=("lvb",),
        typical_duration_s=470.0,
    ),
    Benchmark(
        name="video_holmes",
        title="Video-Holmes",
        category="reasoning",
        annotation_file="holmes.json",
        problem_types=MC,
        metric="accuracy",
        aliases=("holmes",),
        typical_duration_s=100.0,
    ),
    Benchmark(
        name="minerva",
        title="MINERVA",
        category="reasoning",
        annotation_file="minerva.json",
        problem_types=MC,
        metric="accuracy (multiple choice)",
        typical_duration_s=720.0,
    ),
    Benchmark(
        name="longvideo_reason",
        title="LongVideo-Reason",
        category="reasoning",
        annotation_file="longvideoreason.json",
        problem_types=MC,
        metric="accuracy",
        aliases=("longvideoreason", "lvr"),
        typical_duration_s=600.0,
    ),
    Benchmark(
        name="livesports3k_qa",
        title="LiveSports-3K QA",
        category="streaming",
        annotation_file="livesports3k_qa.json",
        problem_types=MC,
        metric="accuracy; subsets by question type (What/Who/When)",
        aggregate=_livesports,
        required_fields=("q_type_livesports",),
        aliases=("livesports", "livesports3k", "livesports_3k_qa"),
        typical_duration_s=60.0,
        duration=_clip_duration,
    ),
    Benchmark(
        name="odvbench",
        title="ODV-Bench",
        category="streaming",
        annotation_file="odvbench.json",
        problem_types=("multiple choice", "boolean"),
        metric="accuracy; subsets by the optional `task` field",
        aggregate=_accuracy_by("task"),
        aliases=("odv",),
        typical_duration_s=120.0,
        has_public_file=False,
        example=_mc_example(task="event_prediction"),
    ),
    Benchmark(
        name="videomme_v2",
        title="Video-MME-v2",
        category="general",
        annotation_file="videomme_v2.json",
        problem_types=MC,
        metric="per-question accuracy; subsets by level (1-3); group consistency as a detail",
        aggregate=_videomme_v2,
        aliases=("video_mme_v2", "videommev2"),
        typical_duration_s=900.0,
        has_public_file=False,
        example=_mc_example(level=2, group_id="g0001"),
    ),
]
