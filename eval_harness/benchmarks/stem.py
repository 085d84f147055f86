"""STEM benchmarks: MMVU and Video-MMMU (accuracy; numbers compared after rounding by the reward).

MMVU's official score covers all 1,000 validation questions: ``mmvu-all.json`` (625 multiple choice, 375
open-ended). ``mmvu.json`` / ``mmvu-mc.json`` hold only the multiple-choice part, whose accuracy is the
subset ``multiple choice`` here; a score reported for MMVU is compared with the 1,000-question overall.
Open-ended answers are scored by rule here and officially by an LLM judge (``judge.model=...``).

Video-MMMU has three tracks of 300 questions; the EasyVideoR1 records do not name the track, but keep the
official order (ids 1–300 adaptation, 301–600 comprehension, 601–900 perception), which is used unless a
record carries a ``track`` field. Each Adaptation question refers to an image (``<image 1>``):
``videommmu_with_image.json`` (read when present, as EasyVideoR1 does) names it in ``image_path``, and the
harness gives the model that image after the video, with a sentence saying so. With only
``videommmu.json`` the model sees the video alone; lmms-eval relies on the image being shown in the
Adaptation video's last frames instead, which frame sampling may skip (see README.md).
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, micro
from eval_harness.benchmarks.base import Benchmark, default_render
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


#: said before the question of a record whose image follows the video (EasyVideoR1 adds a similar line)
IMAGE_HINT = "The image this question refers to is given after the video."


def render_videommmu(record: dict[str, Any], style: str) -> str:
    text = default_render(record, style)
    return f"{IMAGE_HINT}\n{text}" if record.get("image_path") else text


def describe_videommmu(records: list[dict[str, Any]]) -> list[str]:
    adaptation = [r for r in records if track_of(r) == "Adaptation"]
    if adaptation and not any(r.get("image_path") for r in adaptation):
        return [
            "the Adaptation records name no image (videommmu.json): the model sees the video alone; use "
            "videommmu_with_image.json to give it the question's image as EasyVideoR1 does"
        ]
    return []


BENCHMARKS = [
    Benchmark(
        name="mmvu",
        title="MMVU",
        category="stem",
        annotation_file="mmvu-all.json",
        problem_types=("multiple choice", "open-ended"),
        metric=(
            "accuracy over all 1,000 questions (open-ended: rule, or the LLM judge); subsets by problem type "
            "(multiple choice = the 625 of mmvu.json)"
        ),
        aggregate=_by_type,
        judge=True,
        typical_duration_s=50.0,
    ),
    Benchmark(
        name="videommmu",
        title="Video-MMMU",
        category="stem",
        annotation_file="videommmu_with_image.json",
        fallback_files=("videommmu.json",),
        problem_types=("multiple choice", "numerical"),
        metric="accuracy; subsets by track (Perception, Comprehension, Adaptation)",
        aggregate=_videommmu,
        render=render_videommmu,
        describe=describe_videommmu,
        aliases=("video_mmmu",),
        typical_duration_s=500.0,
    ),
]
