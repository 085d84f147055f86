"""Metric sinks: a stdout line per step, JSONL history, TensorBoard scalars that read back; rank 0 only."""

from __future__ import annotations

import json
import logging

import pytest

from vrl.metrics import build_metric_logger


def test_sinks_write_what_they_receive(tmp_path, caplog):
    logger = build_metric_logger(["stdout", "jsonl", "tensorboard"], tmp_path, stdout_keys=["a", "b"], rank=0)
    with caplog.at_level(logging.INFO, logger="vrl"):
        logger.log({"a": 1.0, "b": 0.123456, "c": float("nan")}, step=3)
        logger.log({"a": 2.0, "b": 0.5}, step=4)
    logger.close()
    assert "step 3 | a=1 b=0.1235" in caplog.text
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 3, "a": 1.0, "b": 0.123456, "c": None}, {"step": 4, "a": 2.0, "b": 0.5}]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("a")] == [(3, 1.0), (4, 2.0)]
    assert "c" not in events.Tags()["scalars"]  # non-finite values are not plotted


def test_other_ranks_log_nothing(tmp_path):
    logger = build_metric_logger(["jsonl"], tmp_path, rank=1)
    logger.log({"a": 1.0}, step=1)
    logger.close()
    assert not (tmp_path / "metrics.jsonl").exists()


def test_unknown_sink_is_an_error(tmp_path):
    with pytest.raises(
        ValueError, match=r"Unknown metric sink 'mlflow'\. Known sinks: stdout, jsonl, tensorboard, wandb\."
    ):
        build_metric_logger(["mlflow"], tmp_path, rank=0)
