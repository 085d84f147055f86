"""Responses → per-record accuracies (the training reward) → one benchmark's results entry.

The entry is what ``results.json`` holds per benchmark and what ``python -m eval_harness score`` writes:
``{"benchmark", "num_scored", "num_missing", "overall", "subsets", ...}`` with ``overall`` and the subsets
on a 0–100 scale. A record with no prediction is missing: the caller decides whether that is allowed
(``allow_partial``); the numbers are then computed over the scored records. A sample that could not run
(missing video, prompt too long) has an error line: it counts as a wrong answer and in ``num_errors``.
``notes`` (when present) joins the benchmark's facts about its records (``Benchmark.describe``) and the
aggregation's remarks (which number is the headline).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from eval_harness.aggregate import Row
from eval_harness.benchmarks import Benchmark
from eval_harness.records import KEY
from vrl.rewards import RewardConfig, canonical_type, score, score_batch

#: problem types a second-stage LLM judge may re-score
JUDGED_TYPES = ("open-ended",)


class MissingPredictions(ValueError):
    """Records without a prediction while ``allow_partial`` is off."""

    def __init__(self, benchmark: str, missing: list[str], total: int) -> None:
        listed = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        super().__init__(
            f"{benchmark}: {len(missing)} of {total} records have no prediction (keys: {listed}); "
            "finish the run (rerun with the same name=) or pass allow_partial=true"
        )
        self.benchmark = benchmark
        self.missing = missing


def _scores(bench: Benchmark, records: list[dict], responses: list[str], cfg: RewardConfig) -> list[dict]:
    try:
        return score_batch(records, responses, cfg)
    except ValueError:
        pass  # find the record at fault and name it
    out = []
    for record, response in zip(records, responses):
        try:
            out.append(score(record, response, cfg))
        except ValueError as e:
            raise ValueError(
                f"{bench.title}: record {record.get(KEY)} (problem_id {record.get('problem_id')}) "
                f"cannot be scored: {e}"
            ) from None
    return out


def score_rows(
    bench: Benchmark,
    records: list[dict[str, Any]],
    responses: Mapping[str, str],
    reward: RewardConfig | None = None,
    verdicts: Mapping[str, float] | None = None,
) -> list[Row]:
    """A :class:`Row` per record that has a response (records keep their order).

    ``verdicts`` (judge accuracy by key) replace the rule-based accuracy of open-ended records.
    """
    cfg = reward or RewardConfig()
    present = [r for r in records if r[KEY] in responses]
    scores = _scores(bench, present, [responses[r[KEY]] for r in present], cfg) if present else []
    rows = []
    for record, result in zip(present, scores):
        accuracy = float(result["accuracy"])
        if verdicts and record[KEY] in verdicts and canonical_type(record["problem_type"]) in JUDGED_TYPES:
            accuracy = float(verdicts[record[KEY]])
        rows.append(Row(record=record, accuracy=accuracy, scores=result, response=responses[record[KEY]]))
    return rows


def summarize(
    bench: Benchmark,
    records: list[dict[str, Any]],
    responses: Mapping[str, str],
    *,
    allow_partial: bool = False,
    reward: RewardConfig | None = None,
    verdicts: Mapping[str, float] | None = None,
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The results entry of one benchmark (see the module docstring); raises :class:`MissingPredictions`."""
    missing = [r[KEY] for r in records if r[KEY] not in responses]
    if missing and not allow_partial:
        raise MissingPredictions(bench.name, missing, len(records))
    rows = score_rows(bench, records, responses, reward, verdicts)
    summary = bench.aggregate(rows)
    entry: dict[str, Any] = {
        "benchmark": bench.name,
        "title": bench.title,
        "metric": bench.metric,
        "num_records": len(records),
        "num_scored": len(rows),
        "num_missing": len(missing),
        "num_errors": len(errors or {}),
        "overall": summary.overall,
        "subsets": dict(summary.subsets),
        "counts": dict(summary.counts),
    }
    if summary.details:
        entry["details"] = dict(summary.details)
    notes = [*(bench.describe(records) if bench.describe else []), *summary.notes]
    if notes:
        entry["notes"] = notes
    if errors:
        entry["errors"] = dict(Counter(errors.values()))
    if verdicts:
        entry["num_judged"] = sum(1 for r in rows if r.record[KEY] in verdicts)
    return entry
