"""Metric sinks behind one small interface: stdout line per step, JSONL, TensorBoard, W&B (optional)."""

from vrl.metrics.sinks import (
    SINKS,
    JsonlSink,
    MetricLogger,
    MetricSink,
    StdoutSink,
    TensorBoardSink,
    build_metric_logger,
    check_sink_names,
)

__all__ = [
    "SINKS",
    "JsonlSink",
    "MetricLogger",
    "MetricSink",
    "StdoutSink",
    "TensorBoardSink",
    "build_metric_logger",
    "check_sink_names",
]
