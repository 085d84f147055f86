"""One-step-off asynchronous training (``trainer.async_rollout=true``): each batch after the first is
generated in the rollout thread by the weights of the step before (staleness exactly one update, checked on
the rollout engine's own weights), settings that cannot work are refused, and a run killed with SIGKILL
and resumed logs the same metrics as an uninterrupted asynchronous run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from vrl.config import parse
from vrl.trainer.config import Config

ROOT = Path(__file__).resolve().parents[3]
SMALL = [
    "toy.num_train=12",
    "toy.num_val=6",
    "toy.families=[color,boolean]",
    "data.video_source=decode",
    "rollout.n=2",
    "rollout.max_response_length=12",
    "trainer.rollout_batch_size=2",
    "trainer.total_steps=4",
    "trainer.save_every=2",
    "trainer.metrics=[jsonl]",
    "trainer.export_final=false",
    "trainer.async_rollout=true",
    "algorithm.rollout_correction=tis",
]
#: wall-clock measurements differ between any two runs
VOLATILE = ("perf/", "time/")


# ---- settings ------------------------------------------------------------------------------------------
def test_async_settings_that_cannot_work_are_refused_naming_what_works():
    cfg, _ = parse(Config, SMALL)
    assert cfg.trainer.async_rollout and not Config().trainer.async_rollout
    with pytest.raises(ValueError, match=r"needs algorithm\.rollout_correction=tis .* or mis"):
        parse(Config, [*SMALL, "algorithm.rollout_correction=none"])
    with pytest.raises(ValueError, match=r"one-rank trainer .* got 2 ranks"):
        parse(Config, [*SMALL, "tasks_per_node=2"])
    parse(Config, [*SMALL, "rollout.name=vllm", "algorithm.rollout_correction=mis"])


# ---- staleness, in process ------------------------------------------------------------------------------
def _fingerprint(model: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().sum() for p in model.parameters()))


def test_each_batch_is_generated_by_the_previous_steps_weights_in_the_rollout_thread(tmp_path):
    from vrl.distributed import init_distributed
    from vrl.models.loading import model_family
    from vrl.models.tiny import resolve_model
    from vrl.trainer.loop import Trainer
    from vrl.trainer.stage import prepare_data

    cfg, _ = parse(Config, [*SMALL, "rollout.name=hf", "engine.lr=1e-2", "trainer.save_every=0"])
    dist_ctx = init_distributed()
    model_path = resolve_model(cfg.model)
    train, _, cache_dirs = prepare_data(cfg, dist_ctx, model_family(model_path))
    trainer = Trainer(cfg, tmp_path / "run", dist_ctx, model_path, train, [], cache_dirs)
    collects: dict[int, dict] = {}
    collect = trainer._collect

    def recorded(step: int):
        before = _fingerprint(trainer.rollout.model)
        result = collect(step)
        collects[step] = {
            "weights": before,
            "unchanged": _fingerprint(trainer.rollout.model) == before,
            "thread": threading.current_thread().name,
        }
        return result

    trainer._collect = recorded
    trainer._async._collect = recorded  # the rollout thread's collect function
    weights = [_fingerprint(trainer.rollout.model)]  # W_0, then W_k: the rollout engine after step k-1's sync
    staleness = []
    for step in range(cfg.trainer.total_steps):
        metrics = trainer.train_step()
        trainer.step += 1
        weights.append(_fingerprint(trainer.rollout.model))
        staleness.append(metrics["async/staleness"])
        if step < cfg.trainer.total_steps - 1:  # the last step generates nothing ahead
            assert metrics["time/overlap_s"] >= 0
        else:
            assert "time/overlap_s" not in metrics
    trainer._async.close()
    trainer.rollout.close()

    assert len(set(weights)) == len(weights), (
        "every update must change the weights for this test to mean anything"
    )
    assert staleness == [0.0, 1.0, 1.0, 1.0]
    assert sorted(collects) == [0, 1, 2, 3]  # no batch generated beyond the last step
    assert collects[0]["weights"] == weights[0] and collects[0]["thread"] == threading.main_thread().name
    for k in (1, 2, 3):  # batch k: sampled by W_{k-1}, trained from W_k
        assert collects[k]["weights"] == weights[k - 1], k
        assert collects[k]["weights"] != weights[k]
        assert collects[k]["thread"].startswith("vrl-rollout")
        assert collects[k]["unchanged"], "the weights changed while a batch was being generated"


# ---- kill -9 and resume ----------------------------------------------------------------------------------
def _start(tmp_path: Path, name: str) -> subprocess.Popen:
    args = ["stage=train", "preset=none", "cluster=local", *SMALL, "trainer.total_steps=6"]
    return subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / "submit.py"), *args, f"run_root={tmp_path}", f"name={name}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


@pytest.mark.integration
def test_killed_and_resumed_async_run_logs_the_same_metrics(tmp_path):
    ref = _start(tmp_path, "uninterrupted")
    out, _ = ref.communicate(timeout=1200)
    assert ref.returncode == 0, out[-3000:]

    victim = _start(tmp_path, "killed")
    run = tmp_path / "train" / "killed"
    deadline = time.time() + 1200
    while time.time() < deadline:  # kill -9 once step 3 is logged (the checkpoint of step 2 exists)
        if (run / "metrics.jsonl").exists() and any(r.get("step") == 3 for r in _metrics(run)):
            break
        assert victim.poll() is None, victim.stdout.read()[-3000:]
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    saved = run / "checkpoints" / "step_000002"
    assert (saved / "COMPLETE").exists()
    assert not (run / "summary.json").exists()
    batch = json.loads((saved / "trainer_state.json").read_text())["async_batch"]
    assert (batch["step"], batch["weight_version"]) == (2, 1)  # step 3's batch, sampled by W_1

    again = _start(tmp_path, "killed")
    out, _ = again.communicate(timeout=1200)
    assert again.returncode == 0, out[-3000:]
    assert "resumed from" in out
    reference = _metrics(tmp_path / "train" / "uninterrupted")
    assert [r.get("async/staleness") for r in reference if "reward/overall" in r] == [0.0] + [1.0] * 5
    assert _metrics(run) == reference
