"""TempCompass: accuracy per question format, and per temporal dimension within each format.

The official release has four formats over the same videos, each with its own evaluation script
(``eval_multi-choice.py``, ``eval_yes_no.py``, ``eval_caption_matching.py``, ``eval_captioning.py``) that
prints the accuracy of each temporal dimension (action, direction, speed, order, attribute change) and
their pooled ``avg`` for that format. The formats are never pooled together, so here every format is a
subset (``multi-choice``, ``yes_no``, ``caption_matching``, ``captioning``) and every format × dimension
pair too (``multi-choice/action``, ...).

``overall`` (the headline) is the multi-choice accuracy: the format papers quote as "TempCompass" and the
one EasyVideoR1's file holds. Without multi-choice records it is the mean of the formats present, and the
results say so.

Scoring follows the official rule-based path (``--disable_llm``): multiple choice and caption matching by
the chosen option, yes/no by the answer's yes or no. Caption generation is officially judged by an LLM
that answers the question from the generated caption; here captioning records are open-ended, scored by
rule (exact match / ROUGE against the right option's text) unless the LLM judge is configured
(``judge.model=...``), which is closer to the official protocol but not the same prompt.
"""

from __future__ import annotations

import re
from typing import Any

from eval_harness.aggregate import Row, Summary, field_of, group, mean, pct
from eval_harness.benchmarks.base import Benchmark, field_in
from vrl.rewards import canonical_type

#: the four formats, in the order of the paper
FORMATS = ("multi-choice", "yes_no", "caption_matching", "captioning")
#: the five temporal dimensions, in the order the official scripts print them
DIMS = ("action", "direction", "speed", "order", "attribute_change")
#: the problem type each format's records have
FORMAT_TYPES = {
    "multi-choice": "multiple choice",
    "yes_no": "boolean",
    "caption_matching": "multiple choice",
    "captioning": "open-ended",
}
_SPELLINGS = {
    "multichoice": "multi-choice",
    "multiplechoice": "multi-choice",
    "mc": "multi-choice",
    "yesno": "yes_no",
    "captionmatching": "caption_matching",
    "captioning": "captioning",
    "captiongeneration": "captioning",
}


def format_of(record: dict[str, Any]) -> str | None:
    """The record's format (``task_format``, official spellings accepted), or None if unknown."""
    return _SPELLINGS.get(re.sub(r"[^a-z]", "", str(record.get("task_format", "")).lower()))


def _check_format(record: dict[str, Any]) -> str | None:
    fmt = format_of(record)
    if fmt is None:
        return f"has task_format={record.get('task_format')!r}; expected one of: {', '.join(FORMATS)}"
    expected = FORMAT_TYPES[fmt]
    if canonical_type(record["problem_type"]) != expected:
        return f"has task_format={fmt!r} with problem_type={record['problem_type']!r}; {fmt} records are {expected}"
    return None


def aggregate(rows: list[Row]) -> Summary:
    summary = Summary(overall=0.0)
    by_format = group(rows, format_of, FORMATS)
    for fmt, members in by_format.items():
        summary.subsets[fmt] = pct(r.accuracy for r in members)
        summary.counts[fmt] = len(members)
        for dim, in_dim in group(members, field_of("dim"), DIMS).items():
            summary.subsets[f"{fmt}/{dim}"] = pct(r.accuracy for r in in_dim)
            summary.counts[f"{fmt}/{dim}"] = len(in_dim)
    if "multi-choice" in by_format:
        summary.overall = summary.subsets["multi-choice"]
    elif by_format:
        summary.overall = mean(summary.subsets[f] for f in by_format)
        summary.notes.append(
            f"no multi-choice records: overall is the mean of the formats present ({', '.join(by_format)}), "
            "not comparable with a multi-choice score"
        )
    return summary


EXAMPLE = {
    "problem_id": 1,
    "problem": "What does the man do right after he opens the door?",
    "problem_type": "multiple choice",
    "options": ["A. He sits down.", "B. He waves.", "C. He turns on the light.", "D. He leaves."],
    "solution": "<answer>C</answer>",
    "path": "videos/example.mp4",
    "data_type": "video",
    "dim": "order",
    "task_format": "multi-choice",
}

BENCHMARK = Benchmark(
    name="tempcompass",
    title="TempCompass",
    category="general",
    annotation_file="tempcompass.json",
    problem_types=("multiple choice", "boolean", "open-ended"),
    metric=(
        "multi-choice accuracy; accuracy of each question format (multi-choice, yes_no, caption_matching, "
        "captioning) and of each temporal dimension within it, as the official scripts report"
    ),
    aggregate=aggregate,
    checks=(field_in("dim", DIMS), _check_format),
    required_fields=("dim", "task_format"),
    judge=True,
    typical_duration_s=12.0,
    has_public_file=False,
    example=EXAMPLE,
)
