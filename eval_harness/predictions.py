"""Prediction files: append-only JSONL per benchmark, one line per sample, durable before the next sample.

``<run>/predictions/<benchmark>.jsonl`` is shared by every array task: a line is appended under an
exclusive ``flock`` on a side file, then flushed and fsynced, so a killed task loses at most the sample it
was generating. A line cut short by a kill is terminated by the next writer and ignored by readers. The
file is keyed by ``key`` (see :mod:`eval_harness.records`), not by task, so a rerun with any number of
shards skips what is done. The inference settings are stored once in ``settings.json`` and in every
line; a rerun with other settings is refused instead of mixing two evaluations in one file.

A line: ``{"benchmark", "key", "problem_id", "response", "error", "scores", "settings", "shard", ...}``;
``error`` is ``{"reason", "message"}`` for a sample that could not be run (missing video, prompt too long),
``null`` otherwise.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vrl.log import get_logger

logger = get_logger(__name__)

SETTINGS_FILE = "settings.json"


def predictions_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "predictions"


def prediction_file(run_dir: str | Path, benchmark: str) -> Path:
    return predictions_dir(run_dir) / f"{benchmark}.jsonl"


class PredictionWriter:
    """Appends lines to one benchmark's file; safe across processes (flock) and kills (fsync per line)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def append(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode()
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with open(self.path, "ab") as fh:
                    if fh.tell() > 0 and not _ends_with_newline(self.path):
                        fh.write(b"\n")  # a writer was killed mid-line: close that line, never glue onto it
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def read_lines(path: str | Path) -> list[dict[str, Any]]:
    """Every complete JSON object line of a prediction file (a torn line is skipped with a warning)."""
    path = Path(path)
    if not path.is_file():
        return []
    out, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                bad += 1
                continue
            if isinstance(obj, dict):
                out.append(obj)
            else:
                bad += 1
    if bad:
        logger.warning("%s: skipped %d unreadable line(s) (a task killed while writing)", path, bad)
    return out


def latest_by_key(lines: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One line per key: the first line without an error, else the last error line."""
    best: dict[str, dict[str, Any]] = {}
    for line in lines:
        key = line.get("key")
        if key is None:
            continue
        key = str(key)
        current = best.get(key)
        if current is None or current.get(
            "error"
        ):  # an answer replaces an error, a later error an earlier one
            best[key] = line
    return best


def load_predictions(run_dir: str | Path, benchmark: str) -> dict[str, dict[str, Any]]:
    return latest_by_key(read_lines(prediction_file(run_dir, benchmark)))


def finished_keys(run_dir: str | Path, benchmark: str, retry_errors: bool) -> set[str]:
    """Keys a rerun skips: every predicted sample, and the failed ones too unless ``retry_errors``."""
    return {
        key
        for key, line in load_predictions(run_dir, benchmark).items()
        if not (retry_errors and line.get("error"))
    }


def check_settings(run_dir: str | Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` for the run's predictions, or refuse when they differ from the recorded ones."""
    path = predictions_dir(run_dir) / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_suffix(".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            recorded = json.loads(path.read_text())
            if recorded != settings:
                diffs = [
                    f"{k}: {recorded.get(k)!r} -> {settings.get(k)!r}"
                    for k in sorted(set(recorded) | set(settings))
                    if recorded.get(k) != settings.get(k)
                ]
                raise ValueError(
                    f"the predictions in {path.parent} were made with other inference settings "
                    f"({'; '.join(diffs)}): use another name= for a new evaluation"
                )
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True))
        tmp.replace(path)


def match_predictions(
    records: list[dict[str, Any]], lines: list[dict[str, Any]], source: str = "predictions"
) -> dict[str, str]:
    """Responses by record key from ``{"problem_id", "response"}`` lines (``key`` is accepted too).

    A line's id is matched against record keys first, then against ``problem_id``. When several records
    share a ``problem_id`` and lines give only that id, the lines go to those records in file order.
    Lines naming no record raise ``ValueError`` listing the unknown ids, as do duplicate lines for one
    record.
    """
    from eval_harness.records import KEY

    keys = {r[KEY] for r in records}
    by_pid: dict[str, list[str]] = {}
    for r in records:
        by_pid.setdefault(str(r["problem_id"]), []).append(r[KEY])
    responses: dict[str, str] = {}
    unknown: list[str] = []
    duplicate: list[str] = []
    used: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        ident = line.get("key", line.get("problem_id"))
        if ident is None:
            raise ValueError(f"{source}: line {n} has no 'problem_id'")
        ident = str(ident)
        if ident in keys and not (ident in by_pid and len(by_pid[ident]) > 1):
            key = ident
        elif ident in by_pid:
            candidates = by_pid[ident]
            i = used.get(ident, 0)
            if i >= len(candidates):
                duplicate.append(ident)
                continue
            key = candidates[i]
            used[ident] = i + 1
        else:
            unknown.append(ident)
            continue
        if key in responses:
            duplicate.append(ident)
            continue
        response = line.get("response")
        responses[key] = (
            response if isinstance(response, str) else ("" if response is None else str(response))
        )
    if unknown:
        listed = ", ".join(unknown[:10]) + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else "")
        raise ValueError(f"{source}: {len(unknown)} prediction(s) for unknown problem_id(s): {listed}")
    if duplicate:
        raise ValueError(f"{source}: more than one prediction for problem_id(s): {', '.join(duplicate[:10])}")
    return responses
