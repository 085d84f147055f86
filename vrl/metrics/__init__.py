"""Metric sinks behind one small interface: stdout line per step, JSONL, TensorBoard."""

from vrl.metrics.sinks import (
    JsonlSink,
    MetricLogger,
    MetricSink,
    StdoutSink,
    TensorBoardSink,
    build_metric_logger,
)

__all__ = ["JsonlSink", "MetricLogger", "MetricSink", "StdoutSink", "TensorBoardSink", "build_metric_logger"]
