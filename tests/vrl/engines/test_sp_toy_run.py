"""A short toy RL run with engine.sequence_parallel_size=2 (2 processes, one data-parallel rank) logs the
same rewards at every step as the same run on one process with the same seed.

Why it holds: rollouts are seeded per data-parallel rank and both ranks of an SP group share dp_rank 0,
so both runs sample from the same seeds; the S=2 update equals the S=1 update within float rounding
(``test_sequence_parallel.py``), so the next step's policy and its samples are the same. The tiny
random policy's rewards barely move (0.5 at most steps), so the test also checks the per-step entropy and
loss of the sampled responses (equal within 1e-5: the same samples) and the gradient norm (within 1e-4
relative: the same update).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
STEPS = 10
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
    "rollout.max_response_length=8",
    "trainer.rollout_batch_size=2",
    f"trainer.total_steps={STEPS}",
    "trainer.save_every=0",
    "trainer.val_before=false",
    "trainer.metrics=[jsonl]",
    "trainer.export_final=false",
    "trainer.seed=3",
    "engine.share_prompts=false",  # sequence parallelism runs the padded pass without shared prompts
]


def _rewards(tmp_path: Path, name: str, *args: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *RUN, *args, f"run_root={tmp_path}", f"name={name}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [
        json.loads(line) for line in (tmp_path / "train" / name / "metrics.jsonl").read_text().splitlines()
    ]
    steps = [r for r in rows if "reward/overall" in r]
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    return steps


def _same(one: dict, two: dict, key: str, tol: float) -> None:
    assert abs(one[key] - two[key]) <= tol * max(1.0, abs(one[key])), (key, one["step"], one[key], two[key])


def test_s2_toy_run_logs_the_rewards_of_one_process(tmp_path):
    one = _rewards(tmp_path, "s1")
    two = _rewards(tmp_path, "s2", "tasks_per_node=2", "engine.sequence_parallel_size=2")
    for a, b in zip(one, two, strict=True):
        rewards = sorted(k for k in a if k.startswith("reward/"))
        assert rewards and rewards == sorted(k for k in b if k.startswith("reward/"))
        assert {k: a[k] for k in rewards} == {k: b[k] for k in rewards}, a["step"]  # exactly
        _same(a, b, "actor/entropy", 1e-5)
        _same(a, b, "actor/loss", 1e-5)
        _same(a, b, "actor/grad_norm", 1e-4)
        assert a["response/length_mean"] == b["response/length_mean"]
