"""What a benchmark is: its annotation file, its prompt wording, its record checks and its official metric.

A benchmark is a declarative :class:`Benchmark`; the few that need code (their own wording, a sub-task
derived from the path, a two-level average) pass small functions. Scoring of a single record is never
defined here: every record is scored by :mod:`vrl.rewards` (the training reward), and a benchmark only
says how per-record accuracies combine into its official numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval_harness.aggregate import Row, Summary, micro
from vrl.data.prompts import user_text

#: prompt styles: ``think`` (reason in <think>, answer in <answer>) and ``direct`` (answer only)
STYLES = ("direct", "think")

Renderer = Callable[[dict[str, Any], str], str]
Aggregator = Callable[[list[Row]], Summary]
Check = Callable[[dict[str, Any]], str | None]
Describe = Callable[[list[dict[str, Any]]], list[str]]


def default_render(record: dict[str, Any], style: str) -> str:
    """The training prompt: question, options, and the answer instruction of the record's type."""
    return user_text(record, style)


def plain_accuracy(rows: list[Row]) -> Summary:
    """Accuracy over all records (0–100), no sub-categories."""
    return micro(rows, {})


@dataclass(frozen=True)
class Benchmark:
    name: str
    """Registry name (lower case, used in ``benchmarks=[...]`` and prediction files)."""
    title: str
    """Name as the benchmark's paper writes it (reports)."""
    category: str
    """Group of the EasyVideoR1 report: general, long, reasoning, stem, spatial, grounding, streaming, toy."""
    annotation_file: str
    """File name under ``annotations_dir`` (unified records, JSON list or JSONL)."""
    problem_types: tuple[str, ...]
    """Canonical problem types its records may have; any other type is a data error."""
    metric: str
    """The official metric in words (reports, FORMAT docs)."""
    fallback_files: tuple[str, ...] = ()
    """Older file names read when ``annotation_file`` is absent (Video-MMMU: ``videommmu.json``)."""
    aggregate: Aggregator = plain_accuracy
    """Per-record accuracies → overall and sub-categories (official definitions)."""
    render: Renderer = default_render
    """Record, style → the user prompt text (media placeholder excluded)."""
    checks: tuple[Check, ...] = ()
    """Record checks returning an error message (e.g. a sub-category value outside the official ones)."""
    required_fields: tuple[str, ...] = ()
    """Benchmark-specific fields every record must carry (the aggregation reads them)."""
    key_field: str = ""
    """Field that tells records sharing a ``problem_id`` apart (VideoMathQA: ``mbinary_id``)."""
    aliases: tuple[str, ...] = ()
    """Other spellings accepted by the registry (matched ignoring case and punctuation)."""
    video_dir: str = ""
    """Folder under ``video_root`` holding its videos (default: ``name``)."""
    typical_duration_s: float = 60.0
    """Typical video length: the cost estimate of a sample whose length is unknown (sharding)."""
    duration: Callable[[dict[str, Any]], float | None] | None = None
    """Video length of a record in seconds when its fields say it (sharding cost)."""
    describe: Describe | None = None
    """Facts about the whole annotation file reported with the results, whatever was scored (MVBench: how
    many of its 20 tasks the file has)."""
    judge: bool = False
    """Open-ended records are officially scored by an LLM judge (optional second stage here)."""
    has_public_file: bool = True
    """False: the annotation file is not in the EasyVideoR1 release; users convert it (see FORMAT.md)."""
    example: Mapping[str, Any] = field(default_factory=dict)
    """One record in the expected format (documentation and prompt snapshot tests)."""

    @property
    def media_dir(self) -> str:
        return self.video_dir or self.name

    def annotation_path(self, annotations_dir: str | Path) -> Path:
        """The annotation file under ``annotations_dir``: ``annotation_file``, else the first fallback that
        exists, else ``annotation_file`` (whose absence the loader reports)."""
        folder = Path(annotations_dir)
        for name in (self.annotation_file, *self.fallback_files):
            if (folder / name).is_file():
                return folder / name
        return folder / self.annotation_file

    def check_record(self, record: dict[str, Any]) -> list[str]:
        """Messages of every benchmark-specific problem of a record (empty: fine)."""
        problems = [f"lacks the field '{f}'" for f in self.required_fields if f not in record]
        if problems:
            return problems
        return [msg for check in self.checks if (msg := check(record))]


def field_in(name: str, allowed: tuple[str, ...]) -> Check:
    """A check that ``record[name]`` is one of ``allowed`` (the official sub-category values)."""

    def check(record: dict[str, Any]) -> str | None:
        value = record.get(name)
        if value not in allowed:
            return f"has {name}={value!r}; expected one of: {', '.join(allowed)}"
        return None

    return check
