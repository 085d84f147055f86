"""Video-MME (without subtitles): accuracy over 2,700 questions, split by duration, domain and task type.

The official leaderboard reports overall accuracy and the accuracy of each duration class; the paper adds
the six domains and twelve task types. All three are subsets here (their values never collide).
"""

from __future__ import annotations

from eval_harness.aggregate import Row, Summary, field_of, micro
from eval_harness.benchmarks.base import Benchmark, field_in

DURATIONS = ("short", "medium", "long")
DOMAINS = (
    "Knowledge",
    "Film & Television",
    "Sports Competition",
    "Artistic Performance",
    "Life Record",
    "Multilingual",
)
TASK_TYPES = (
    "Temporal Perception",
    "Spatial Perception",
    "Attribute Perception",
    "Action Recognition",
    "Object Recognition",
    "OCR Problems",
    "Counting Problem",
    "Temporal Reasoning",
    "Spatial Reasoning",
    "Action Reasoning",
    "Object Reasoning",
    "Information Synopsis",
)
#: typical lengths of the duration classes (short < 2 min, medium 4–15 min, long 30–60 min)
_SECONDS = {"short": 80.0, "medium": 520.0, "long": 2470.0}


def aggregate(rows: list[Row]) -> Summary:
    return micro(
        rows,
        {"duration": field_of("duration"), "domain": field_of("domain"), "task_type": field_of("task_type")},
        {"duration": DURATIONS, "domain": DOMAINS, "task_type": TASK_TYPES},
    )


BENCHMARK = Benchmark(
    name="videomme",
    title="Video-MME",
    category="general",
    annotation_file="videomme.json",
    problem_types=("multiple choice",),
    metric="accuracy (w/o subtitles); subsets by duration, domain and task type",
    aggregate=aggregate,
    checks=(field_in("duration", DURATIONS), field_in("domain", DOMAINS), field_in("task_type", TASK_TYPES)),
    required_fields=("duration", "domain", "task_type"),
    aliases=("video_mme", "video-mme"),
    typical_duration_s=1000.0,
    duration=lambda record: _SECONDS.get(record.get("duration", "")),
)
