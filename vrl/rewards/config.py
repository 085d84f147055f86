"""Reward settings: the weights of the score, the time bound, extension modules and sandbox limits.

Used as the ``reward`` group of the trainer and eval schemas (``reward.accuracy_weight=0.8``) and as the
top-level schema of ``python -m vrl.rewards score`` (``accuracy_weight=0.8``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vrl.config import choice

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass
class RewardConfig:
    accuracy_weight: float = 0.9
    """Weight of accuracy in ``overall = accuracy_weight · accuracy + format_weight · format``."""
    format_weight: float = 0.1
    """Weight of format in ``overall``; the two weights must sum to 1."""
    require_think: bool = False
    """Format 1.0 also requires a <think>…</think> block before the answer (missing: format 0)."""
    timeout_s: float = 5.0
    """Wall-clock bound of one score call for the types that run out of process (math, Python code)."""
    max_answer_chars: int = 65536
    """An answer longer than this many characters is unparsable (accuracy 0, format 0.5)."""
    extra_modules: list[str] = field(default_factory=list)
    """Modules (import names, never paths) registering extra problem types, e.g. [mypkg.rewards]."""
    num_workers: int = 2
    """score_batch: threads and scoring worker processes used for the slow types (math, code, caption)."""
    worker_memory_mb: int = 4096
    """Address-space limit of a scoring worker process (math-verify/sympy can blow up on crafted LaTeX)."""
    sandbox_isolation: str = choice("auto", ["auto", "namespace", "rlimits"])
    """Python code sandbox: namespace (unshare: no network, own PID space), rlimits (limits and audit hooks only), auto (namespace when available)."""
    sandbox_cpu_s: int = 4
    """Python code sandbox: CPU-time limit in seconds (RLIMIT_CPU)."""
    sandbox_memory_mb: int = 512
    """Python code sandbox: address-space limit in MiB (RLIMIT_AS)."""
    sandbox_max_processes: int = 16
    """Python code sandbox: process limit of the unprivileged sandbox user (RLIMIT_NPROC)."""

    def validate(self) -> None:
        for name in ("accuracy_weight", "format_weight"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}.")
        total = self.accuracy_weight + self.format_weight
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"accuracy_weight + format_weight must sum to 1, got "
                f"{self.accuracy_weight} + {self.format_weight} = {total}."
            )
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}.")
        for name in ("max_answer_chars", "num_workers", "worker_memory_mb", "sandbox_cpu_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.sandbox_memory_mb < 64:
            raise ValueError(f"sandbox_memory_mb must be >= 64, got {self.sandbox_memory_mb}.")
        if self.sandbox_max_processes < 1:
            raise ValueError(f"sandbox_max_processes must be >= 1, got {self.sandbox_max_processes}.")
        for name in self.extra_modules:
            if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name) or name.endswith(".py"):
                raise ValueError(
                    f"extra_modules takes importable module names like 'mypkg.rewards', got {name!r} "
                    "(file paths are not accepted)."
                )
