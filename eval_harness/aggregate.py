"""Official metrics: per-record accuracies (from :mod:`vrl.rewards`) → overall and sub-categories, 0–100.

Two shapes cover most benchmarks: :func:`micro` (accuracy over all records, plus the accuracy of every
value of some fields, e.g. Video-MME's duration, domain and task type) and :func:`macro` (the mean of
per-task accuracies, e.g. MLVU's M-Avg). Benchmarks with other definitions (VSI-Bench, OVO-Bench,
Charades-STA, VideoMathQA) build their :class:`Summary` from these pieces. An empty group is left out,
so partial predictions (``allow_partial=true``) give numbers over the records that were scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FieldOf = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Row:
    """One scored record."""

    record: dict[str, Any]
    accuracy: float
    """Accuracy in [0, 1] from the reward (or the judge): 0/1 for choices, IoU, MRA, ..."""
    scores: Mapping[str, float] = field(default_factory=dict)
    """The reward's whole breakdown (``iou``, ``tiou``, ``miou``, ...)."""
    response: str = ""
    """The model's answer text (empty for a sample that could not run): for metrics that read the answer
    differently from the reward (STVG's EasyVideoR1-compatible box IoU)."""


@dataclass
class Summary:
    overall: float
    """The benchmark's headline number, 0–100 (NaN-free: 0.0 when nothing was scored)."""
    subsets: dict[str, float] = field(default_factory=dict)
    """Official sub-categories, 0–100."""
    counts: dict[str, int] = field(default_factory=dict)
    """Records behind each subset."""
    details: dict[str, float] = field(default_factory=dict)
    """Finer numbers that are not official sub-categories (e.g. VSI-Bench direction easy/medium/hard)."""
    notes: list[str] = field(default_factory=list)
    """What a reader must know to compare the numbers (which one is the headline, a coverage gap)."""


def pct(values: Iterable[float]) -> float:
    """Mean × 100 (0.0 for no values)."""
    vals = list(values)
    return 100.0 * sum(vals) / len(vals) if vals else 0.0


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def group(rows: Sequence[Row], of: FieldOf, order: Sequence[str] = ()) -> dict[str, list[Row]]:
    """Rows by ``of(record)`` (None values dropped); keys in ``order`` first, the rest sorted."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        value = of(row.record)
        if value is None or value == "":
            continue
        groups.setdefault(str(value), []).append(row)
    ordered = [k for k in order if k in groups] + sorted(k for k in groups if k not in order)
    return {k: groups[k] for k in ordered}


def field_of(name: str) -> FieldOf:
    return lambda record: record.get(name)


def micro(
    rows: Sequence[Row], fields: Mapping[str, FieldOf], orders: Mapping[str, Sequence[str]] | None = None
) -> Summary:
    """Overall = accuracy over all rows; a subset per value of each field in ``fields`` (same-named values
    of two fields would collide: callers pass fields with disjoint values)."""
    summary = Summary(overall=pct(r.accuracy for r in rows))
    for name, of in fields.items():
        for value, members in group(rows, of, (orders or {}).get(name, ())).items():
            summary.subsets[value] = pct(r.accuracy for r in members)
            summary.counts[value] = len(members)
    return summary


def macro(rows: Sequence[Row], task_of: FieldOf, order: Sequence[str] = ()) -> Summary:
    """Overall = unweighted mean of the per-task accuracies; one subset per task."""
    summary = Summary(overall=0.0)
    for task, members in group(rows, task_of, order).items():
        summary.subsets[task] = pct(r.accuracy for r in members)
        summary.counts[task] = len(members)
    summary.overall = mean(summary.subsets.values())
    return summary


def by_problem_type(rows: Sequence[Row]) -> dict[str, float]:
    """Accuracy per canonical problem type (a detail every mixed-type benchmark reports)."""
    from vrl.rewards import canonical_type

    return {
        t: pct(r.accuracy for r in members)
        for t, members in group(rows, lambda rec: canonical_type(rec["problem_type"])).items()
    }
