"""Prediction files: durable appends from many processes, torn lines, resume keys, settings guard."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from eval_harness.predictions import (
    PredictionWriter,
    check_settings,
    finished_keys,
    latest_by_key,
    match_predictions,
    prediction_file,
    read_lines,
)
from eval_harness.records import KEY


def _append_many(path: str, who: int, n: int) -> None:
    writer = PredictionWriter(path)
    for i in range(n):
        writer.append({"key": f"{who}-{i}", "response": "x" * 2000})


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = read_lines(path)
    assert len(lines) == 160 and len({line["key"] for line in lines}) == 160


def test_a_torn_last_line_is_closed_and_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    writer = PredictionWriter(path)
    writer.append({"key": "a", "response": "1"})
    with open(path, "a") as fh:
        fh.write('{"key": "b", "resp')  # killed mid-write
    writer.append({"key": "c", "response": "3"})
    assert [line["key"] for line in read_lines(path)] == ["a", "c"]


def test_latest_by_key_prefers_answers_over_errors():
    lines = [
        {"key": "a", "error": {"reason": "media_missing"}},
        {"key": "a", "response": "ok", "error": None},
        {"key": "a", "error": {"reason": "media_missing"}},
        {"key": "b", "error": {"reason": "x"}},
        {"key": "b", "error": {"reason": "y"}},
    ]
    best = latest_by_key(lines)
    assert best["a"]["response"] == "ok" and best["b"]["error"]["reason"] == "y"


def test_finished_keys_with_and_without_retrying_errors(tmp_path):
    writer = PredictionWriter(prediction_file(tmp_path, "toy"))
    writer.append({"key": "a", "response": "r", "error": None})
    writer.append({"key": "b", "response": None, "error": {"reason": "media_missing"}})
    assert finished_keys(tmp_path, "toy", retry_errors=True) == {"a"}
    assert finished_keys(tmp_path, "toy", retry_errors=False) == {"a", "b"}
    assert finished_keys(tmp_path, "other", retry_errors=True) == set()


def test_settings_are_recorded_once_and_guarded(tmp_path):
    check_settings(tmp_path, {"model": "m", "fps": 2.0})
    check_settings(tmp_path, {"model": "m", "fps": 2.0})
    with pytest.raises(ValueError, match=r"other inference settings \(fps: 2.0 -> 1.0\)"):
        check_settings(tmp_path, {"model": "m", "fps": 1.0})
    assert json.loads((tmp_path / "predictions" / "settings.json").read_text()) == {"fps": 2.0, "model": "m"}


def test_match_predictions_by_key_or_problem_id():
    records = [{"problem_id": 1, KEY: "1"}, {"problem_id": "x", KEY: "x#0"}, {"problem_id": "x", KEY: "x#1"}]
    lines = [
        {"problem_id": "x", "response": "first"},
        {"problem_id": 1, "response": None},
        {"key": "x#1", "response": "k"},
    ]
    assert match_predictions(records, lines) == {"x#0": "first", "1": "", "x#1": "k"}
    with pytest.raises(ValueError, match="more than one"):
        match_predictions(records, [*lines, {"problem_id": "x", "response": "again"}])
    with pytest.raises(ValueError, match="unknown problem_id"):
        match_predictions(records, [{"problem_id": 2, "response": ""}])
