"""Device-specific calls live in vrl/device.py (and megatron's documented CPU compatibility module) only."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"vrl/device.py", "vrl/engines/megatron/compat.py"}
PATTERN = re.compile(r"torch\.cuda\.|\.cuda\(")


def test_no_cuda_calls_outside_the_device_modules():
    offenders = []
    for package in ("vrl", "cache_builder", "eval_harness", "jobs"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED:
                continue
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if PATTERN.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{rel}:{i}: {line.strip()}")
    assert not offenders, "device calls outside vrl/device.py:\n" + "\n".join(offenders)
