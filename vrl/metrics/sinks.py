"""Metric sinks. Each receives ``log(metrics: dict[str, float], step: int)``; rank 0 only.

The W&B sink lives in :mod:`vrl.metrics.wandb_sink` (optional dependency)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from vrl.log import get_logger, global_rank

logger = get_logger(__name__)


class MetricSink(Protocol):
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e6):
        return str(int(v))
    return f"{v:.4g}"


class StdoutSink:
    """One fixed-format line per step through the project logger (keys sorted, selectable)."""

    def __init__(self, keys: Sequence[str] | None = None) -> None:
        self.keys = list(keys) if keys else None

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        keys = self.keys or sorted(metrics)
        parts = [f"{k}={_fmt(metrics[k])}" for k in keys if k in metrics]
        logger.info("step %d | %s", step, " ".join(parts))

    def close(self) -> None:
        pass


class JsonlSink:
    """Append ``{"step": s, **metrics}`` per call; flushed so a killed run keeps its history."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()
        }
        self._fh.write(json.dumps({"step": step, **clean}, sort_keys=True) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class TensorBoardSink:
    """TensorBoard scalars (``SummaryWriter`` from torch, no TensorFlow needed)."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                self._writer.add_scalar(k, v, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class MetricLogger:
    """Fan-out to several sinks; a no-op on ranks other than 0."""

    def __init__(self, sinks: Iterable[MetricSink], rank: int | None = None) -> None:
        self.enabled = (global_rank() if rank is None else rank) == 0
        self.sinks = list(sinks) if self.enabled else []

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for sink in self.sinks:
            sink.log(metrics, step)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def add(self, sink: MetricSink) -> None:
        """Append a sink built by the caller (kept on rank 0 only, like the named ones)."""
        if self.enabled:
            self.sinks.append(sink)


# Sink names for trainer.metrics; `wandb` is optional (vrl.metrics.wandb_sink imports it when built).
SINKS = ("stdout", "jsonl", "tensorboard", "wandb")


def check_sink_names(names: Sequence[str]) -> None:
    """Raise ``ValueError`` for an unknown sink name, or for ``wandb`` when the package is missing."""
    for name in names:
        if name not in SINKS:
            raise ValueError(f"Unknown metric sink '{name}'. Known sinks: {', '.join(SINKS)}.")
    if "wandb" in names:
        from vrl.metrics.wandb_sink import check_wandb_installed

        check_wandb_installed()


def build_metric_logger(
    names: Sequence[str],
    out_dir: str | Path,
    stdout_keys: Sequence[str] | None = None,
    rank: int | None = None,
    run_config: Mapping[str, Any] | None = None,
    project: str = "vrl",
) -> MetricLogger:
    """Sinks by name (``stdout``, ``jsonl`` → ``metrics.jsonl``, ``tensorboard`` → ``tb/``, ``wandb`` →
    a W&B run in ``project`` named after ``out_dir`` with ``run_config`` as its config)."""
    check_sink_names(names)
    out = Path(out_dir)
    sinks: list[MetricSink] = []
    if (global_rank() if rank is None else rank) == 0:
        for name in names:
            if name == "stdout":
                sinks.append(StdoutSink(stdout_keys))
            elif name == "jsonl":
                sinks.append(JsonlSink(out / "metrics.jsonl"))
            elif name == "tensorboard":
                sinks.append(TensorBoardSink(out / "tb"))
            else:
                from vrl.metrics.wandb_sink import WandbSink

                sinks.append(WandbSink(out, project=project, config=run_config))
    return MetricLogger(sinks, rank=rank)
