"""The GPU tier's pytest plumbing (hooks in ``tests/conftest.py``).

- Without CUDA every test marked ``gpu`` is skipped with the reason, so a CPU run collects them and says
  why they did not run (the CPU tiers do not select them at all: ``jobs/test.py``).
- With ``VRL_GPU_REPORT=<path>`` (set by ``python jobs/test.py tier=gpu``) each ``gpu`` test's outcome,
  wall seconds and peak GPU memory are written there as a Markdown table at the end of the session.
  Peak memory is given twice: torch's peak allocation in the test process
  (``torch.cuda.max_memory_allocated``) and the device's peak use over all processes (vLLM's engine core
  runs in its own), sampled every 50 ms with ``torch.cuda.mem_get_info``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SKIP_REASON = "needs a CUDA GPU: the gpu tier (python jobs/test.py tier=gpu on a machine with one)"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def skip_without_cuda(items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not cuda_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


class DeviceSampler:
    """Peak of (total - free) device memory, all processes, sampled on a thread."""

    def __init__(self, period_s: float = 0.05) -> None:
        self.period_s = period_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        while not self._stop.is_set():
            free, total = torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            self._stop.wait(self.period_s)

    def __enter__(self) -> DeviceSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Row:
    nodeid: str
    outcome: str = "not run"
    seconds: float = 0.0
    peak_allocated: int = 0
    peak_device: int = 0
    reason: str = ""


@dataclass
class GpuReport:
    path: Path
    rows: dict[str, Row] = field(default_factory=dict)

    def run_call(self, item: pytest.Item):
        """Generator for a hookwrapper around the test call: time and memory of one gpu test."""
        row = self.rows.setdefault(item.nodeid, Row(item.nodeid))
        if not cuda_available():
            yield
            return
        import torch

        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        with DeviceSampler() as sampler:
            yield
        row.seconds = time.perf_counter() - start
        row.peak_allocated = torch.cuda.max_memory_allocated()
        row.peak_device = sampler.peak

    def record(self, report: pytest.TestReport) -> None:
        row = self.rows.get(report.nodeid)
        if row is None:
            return
        if report.when == "call" or report.outcome != "passed":
            row.outcome = report.outcome
        if report.skipped and isinstance(report.longrepr, tuple):
            row.reason = str(report.longrepr[2]).removeprefix("Skipped: ")

    def write(self) -> None:
        gib = 2**30
        lines = [
            "| test | outcome | seconds | peak allocated (GiB, torch) | peak device use (GiB, all processes) |",
            "|---|---|---|---|---|",
        ]
        for row in self.rows.values():
            outcome = row.outcome + (f" ({row.reason})" if row.reason else "")
            lines.append(
                f"| {row.nodeid} | {outcome} | {row.seconds:.1f} | {row.peak_allocated / gib:.2f} | "
                f"{row.peak_device / gib:.2f} |"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines) + "\n")


def report_from_env() -> GpuReport | None:
    path = os.environ.get("VRL_GPU_REPORT")
    return GpuReport(Path(path)) if path else None
