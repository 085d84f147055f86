"""W&B sink, offline: the run files read back (with wandb's own reader) hold the config, names and scalars."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vrl.metrics import build_metric_logger, check_sink_names
from vrl.metrics.wandb_sink import run_id_for


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No account, no network, nothing written outside tmp_path."""
    pytest.importorskip("wandb", reason="wandb is an optional dependency (pip install 'vrl[wandb]')")
    for key, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "off",
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def read_offline_run(run_dir):
    """Records of the run's ``.wandb`` file as dicts, decoded by ``wandb leet inspect --json``."""
    (wandb_dir,) = (run_dir / "wandb").glob("offline-run-*")
    out = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", str(wandb_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_offline_run_holds_config_names_and_metrics(offline, tmp_path):
    run_dir = tmp_path / "train" / "my-run"
    config = {"model": "tiny-qwen2.5-vl", "engine": {"lr": 1e-6}, "trainer": {"metrics": ["jsonl", "wandb"]}}
    metrics = build_metric_logger(["jsonl", "wandb"], run_dir, rank=0, run_config=config, project="vrl-test")
    metrics.log({"val/accuracy": 0.25}, step=0)
    metrics.log({"reward/overall": 0.5, "actor/grad_norm": float("nan")}, step=1)
    metrics.log({"reward/overall": 0.75, "val/accuracy": 0.5}, step=2)
    metrics.close()

    records = read_offline_run(run_dir)
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["project"] == "vrl-test"
    assert run["display_name"] == "my-run"
    assert run["run_id"] == run_id_for(run_dir)
    logged_config = run["config"]["update"]
    assert logged_config["model"] == "tiny-qwen2.5-vl"
    assert logged_config["engine"] == {"lr": 1e-6}
    assert logged_config["trainer"] == {"metrics": ["jsonl", "wandb"]}
    history = {
        r["history"]["step"].get("num", 0): r["history"]["item"] for r in records if r["type"] == "history"
    }
    assert sorted(history) == [0, 1, 2]
    assert history[0]["val/accuracy"] == 0.25
    assert history[1]["reward/overall"] == 0.5
    assert "actor/grad_norm" not in history[1]  # non-finite values are not sent
    assert history[2]["reward/overall"] == 0.75 and history[2]["val/accuracy"] == 0.5
    assert any(r["type"] == "exit" and r["exit"].get("exit_code", 0) == 0 for r in records)


def test_the_run_id_is_stable_per_run_folder(tmp_path):
    assert run_id_for(tmp_path / "a") == run_id_for(tmp_path / "a" / ".." / "a")
    assert run_id_for(tmp_path / "a") != run_id_for(tmp_path / "b")
    assert run_id_for(tmp_path / "x y:z").startswith("x-y-z-")


def test_other_ranks_start_no_wandb_run(offline, tmp_path):
    metrics = build_metric_logger(["wandb"], tmp_path, rank=1, run_config={}, project="vrl-test")
    metrics.log({"a": 1.0}, step=1)
    metrics.close()
    assert not (tmp_path / "wandb").exists()


def test_missing_wandb_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if it were not installed
    monkeypatch.setattr("vrl.metrics.wandb_sink.importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"pip install 'vrl\[wandb\]'"):
        check_sink_names(["stdout", "wandb"])
    with pytest.raises(ValueError, match="wandb package is not installed"):
        build_metric_logger(["wandb"], tmp_path, rank=0)
    check_sink_names(["stdout", "jsonl", "tensorboard"])  # the others need nothing optional


def test_the_training_config_checks_sinks_when_validated(monkeypatch):
    from vrl.config import parse
    from vrl.trainer.config import Config

    with pytest.raises(ValueError, match="Known sinks: stdout, jsonl, tensorboard, wandb"):
        parse(Config, ["trainer.metrics=[stdout,mlflow]"])
    monkeypatch.setattr("vrl.metrics.wandb_sink.importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValueError, match="wandb package is not installed"):
        parse(Config, ["trainer.metrics=[jsonl,wandb]"])


def test_no_key_and_online_mode_names_the_fix(tmp_path):
    """In a fresh process: wandb keeps its settings process-wide once a run has started."""
    pytest.importorskip("wandb", reason="wandb is an optional dependency (pip install 'vrl[wandb]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_MODE="online", WANDB_SILENT="true", HOME=str(tmp_path), NETRC=str(tmp_path / "none"))
    code = (
        "from vrl.metrics import build_metric_logger\n"
        f"build_metric_logger(['wandb'], {str(tmp_path / 'run')!r}, rank=0, run_config={{}}, project='vrl-test')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "ValueError: W&B could not start" in out.stderr and "WANDB_MODE=offline" in out.stderr
