"""report.md of a training run: settings, phase times and tokens/s, validation, links; kept current."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vrl.metrics import build_metric_logger
from vrl.trainer.run_report import RunReport, performance

CONFIG = {
    "model": "tiny-qwen2.5-vl",
    "data": {"train_files": [], "video_source": "prefer_cache"},
    "algorithm": {
        "advantage": "grpo",
        "loss_agg_mode": "token_mean",
        "kl": "none",
        "dynamic_sampling": False,
    },
    "engine": {"name": "fsdp", "lr": 1e-6, "tensor_parallel_size": 1, "pipeline_parallel_size": 1},
    "rollout": {"name": "hf", "n": 4, "max_response_length": 64, "temperature": 1.0},
    "trainer": {"rollout_batch_size": 2, "global_batch_size": 0, "total_steps": 3, "export_final": True},
    "warmup": {"sft_steps": 0},
}


def step_row(step: int, scale: float = 1.0) -> dict[str, float]:
    return {
        "reward/overall": 0.1 * step,
        "perf/step_s": 10.0 * scale,
        "perf/tokens_per_s": 100.0 * scale,
        "time/rollout_s": 5.0 * scale,
        "time/reward_s": 1.0 * scale,
        "time/logprob_s": 1.0 * scale,
        "time/update_s": 2.0 * scale,
        "time/sync_s": 0.5 * scale,
    }


def test_the_report_follows_the_run_and_survives_a_kill(tmp_path):
    sink = RunReport(tmp_path, CONFIG, world_size=2)
    sink.log({"val/accuracy": 0.25, "val/format": 0.5, "val/num_records": 4.0}, step=0)
    text = (tmp_path / "report.md").read_text()  # written right after the first validation
    assert "in progress or stopped" in text and "No RL step has finished yet." in text
    assert "| accuracy | 0.250 | – |" in text

    sink.log(step_row(1, scale=3.0), step=1)  # the first step is slower (warm-up) and left out
    sink.log(step_row(2), step=2)
    sink.log({**step_row(3), "val/accuracy": 0.5, "val/format": 1.0, "val/num_records": 4.0}, step=3)
    text = (tmp_path / "report.md").read_text()  # a run killed now keeps this one
    assert "| accuracy | 0.250 | 0.500 |" in text and "latest (step 3)" in text

    sink.close()
    text = (tmp_path / "report.md").read_text()
    assert "Status: finished: 3 RL step(s) after 0 warm-start step(s)" in text
    assert "| metric | before | after (step 3) |" in text
    # NeMo-RL-shaped row: 2 data-parallel ranks × 100 tokens/s each; per GPU 100; mean step 10 s
    assert (
        "| grpo | tiny-qwen2.5-vl | 2 | 1 / 1 | fsdp / hf | 8 (2 × 4) | 8 | 64 | 200.0 | 100.0 | 10.00 |"
        in text
    )
    assert "Means over 2 RL step(s) (the first, step 1, is left out" in text
    for row in (
        "| generate | 5.000 | 50.0% |",
        "| reward | 1.000 | 10.0% |",
        "| log-prob | 1.000 | 10.0% |",
        "| update | 2.000 | 20.0% |",
        "| sync | 0.500 | 5.0% |",
        "| other | 0.500 | 5.0% |",
    ):
        assert row in text, row
    assert "| model | tiny-qwen2.5-vl |" in text and "| training data | embedded toy suite |" in text
    assert "| ranks (data × tensor × pipeline parallel) | 2 (2 × 1 × 1) |" in text
    assert "[reward_curve.png](reward_curve.png)" in text and (tmp_path / "reward_curve.png").exists()
    assert "`final/`" in text


def test_a_resumed_run_reports_the_steps_of_the_earlier_attempt(tmp_path):
    rows = [
        {"step": 0, "val/accuracy": 0.1, "val/num_records": 2.0},
        {"step": 1, **step_row(1)},
        {"step": 2, **step_row(2)},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sink = RunReport(tmp_path, CONFIG, world_size=1)
    sink.log({**step_row(3), "val/accuracy": 0.3, "val/num_records": 2.0}, step=3)
    text = (tmp_path / "report.md").read_text()
    assert "| accuracy | 0.100 | 0.300 |" in text
    assert "Means over 2 RL step(s)" in text  # steps 2 and 3; step 1 left out


def test_model_parallel_peers_do_not_count_twice():
    cfg = {**CONFIG, "engine": {**CONFIG["engine"], "tensor_parallel_size": 2}}
    rows = [{"step": 1, **step_row(1)}, {"step": 2, **step_row(2)}]
    text = performance(rows, cfg, world_size=4)
    # 4 ranks = 2 replicas × TP 2: 2 × 100 tokens/s for the run, 50 per GPU
    assert "| 4 | 2 / 1 |" in text and "| 200.0 | 50.0 | 10.00 |" in text


def test_the_report_is_a_sink_beside_the_named_ones(tmp_path):
    metrics = build_metric_logger(["jsonl"], tmp_path, rank=0)
    metrics.add(RunReport(tmp_path, CONFIG, world_size=1))
    metrics.log({"val/accuracy": 0.0, "val/num_records": 1.0}, step=0)
    metrics.close()
    assert (tmp_path / "report.md").exists() and (tmp_path / "metrics.jsonl").exists()
    other = build_metric_logger(["jsonl"], tmp_path / "rank1", rank=1)
    other.add(RunReport(tmp_path / "rank1", CONFIG, world_size=1))
    other.close()
    assert not (tmp_path / "rank1" / "report.md").exists()


ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "stage=train",
    "preset=none",
    "cluster=local",
    "toy.num_train=8",
    "toy.num_val=4",
    "toy.families=[color,boolean]",
    "data.video_source=decode",
    "rollout.n=2",
    "rollout.max_response_length=8",
    "trainer.rollout_batch_size=2",
    "trainer.total_steps=2",
    "trainer.save_every=0",
    "trainer.export_final=false",
    "trainer.metrics=[jsonl,wandb]",
    "trainer.wandb_project=vrl-test",
    "wait=true",
]


@pytest.mark.integration
def test_a_tiny_run_writes_its_report_and_an_offline_wandb_run(tmp_path):
    pytest.importorskip("wandb", reason="wandb is an optional dependency (pip install 'vrl[wandb]')")
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_CONFIG_DIR=str(tmp_path / "wb"))
    out = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *TINY, f"run_root={tmp_path}", "name=tiny"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = tmp_path / "train" / "tiny"
    text = (run / "report.md").read_text()
    assert "Status: finished: 2 RL step(s)" in text
    assert "| metric | before | after (step 2) |" in text
    assert "| generate |" in text and "| sync |" in text and "tokens/s/GPU" in text
    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    records = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", str(wandb_run), "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()  # fmt: skip
    records = [json.loads(line) for line in records if line.startswith("{")]
    (run_record,) = [r["run"] for r in records if r["type"] == "run"]
    assert run_record["project"] == "vrl-test" and run_record["display_name"] == "tiny"
    assert run_record["config"]["update"]["rollout"]["n"] == 2
    steps = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert any("reward/overall" in item for item in steps) and any("val/accuracy" in item for item in steps)
