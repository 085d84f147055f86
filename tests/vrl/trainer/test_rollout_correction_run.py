"""A short training run with rollout correction on: every step logs the rollout/trainer mismatch, and with
the hf rollout engine in fp32 (the same model code as the trainer) the mismatch is numerical noise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
RUN = [
    "stage=train",
    "preset=none",
    "cluster=local",
    "toy.num_train=8",
    "toy.num_val=0",
    "toy.families=[color,boolean]",
    "data.video_source=decode",
    "rollout.name=hf",
    "rollout.n=2",
    "rollout.max_response_length=12",
    "trainer.rollout_batch_size=2",
    "trainer.total_steps=2",
    "trainer.save_every=0",
    "trainer.val_before=false",
    "trainer.metrics=[jsonl]",
    "trainer.export_final=false",
    "algorithm.rollout_correction=tis",
]


def test_fp32_hf_rollout_matches_the_trainer(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *RUN, f"run_root={tmp_path}", "name=tis"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [
        json.loads(line) for line in (tmp_path / "train" / "tis" / "metrics.jsonl").read_text().splitlines()
    ]
    steps = [r for r in rows if "reward/overall" in r]
    assert len(steps) == 2
    for row in steps:
        assert 0 <= row["rollout_corr/kl"] < 1e-3, row
        assert abs(row["rollout_corr/kl_k1"]) < 1e-3
        assert row["rollout_corr/is_ratio_mean"] == pytest.approx(1.0, abs=1e-3)
        assert row["rollout_corr/capped_frac"] == 0.0
