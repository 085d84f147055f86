"""``python -m eval_harness.benchmark`` runs both modes and prints their throughput and the ratio (the
ratio itself is a measurement, reported in the README, not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_benchmark_prints_the_ratio(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [
        "num_records=8",
        "max_new_tokens=4",
        "batch_size=4",
        "toy.num_val=8",
        f"toy.out={tmp_path / 'suite'}",
    ]
    res = subprocess.run(
        [sys.executable, "-m", "eval_harness.benchmark", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    match = re.search(
        r"sequential ([\d.]+) samples/s, asynchronous ([\d.]+) samples/s .* speedup ([\d.]+)x", res.stdout
    )
    assert match, res.stdout
    seq, asy, ratio = map(float, match.groups())
    assert seq > 0 and asy > 0 and ratio == pytest.approx(asy / seq, rel=0.05)
