"""``stage=plan`` on the command line (table and JSON on stdout, nothing submitted) and the check
``stage=train cluster=slurm`` runs before it submits (refusal with the nearest layout; plan.force)."""

from __future__ import annotations

import json

import pytest

from vrl.config import ConfigError, get_preset, parse
from vrl.launch.cli import main
from vrl.planner.stage import check_before_submit, device_bytes

KEYS = ("params", "grads", "optimizer", "activations", "rollout", "total", "device_bytes", "fits")


def test_json_is_one_object_on_stdout(qwen_dirs, capsys, tmp_path):
    argv = [
        "stage=plan", "preset=easyvideor1", f"model={qwen_dirs['Qwen2.5-VL-7B']}", "tasks_per_node=8",
        "engine.param_dtype=bfloat16", "rollout=vllm", "plan.gpu_memory_gb=80", "format=json",
        f"run_root={tmp_path / 'runs'}",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    plan = json.loads(out[0])
    assert all(isinstance(plan[k], int) for k in KEYS[:-1]) and plan["fits"] is False
    assert plan["suggestion"]["changes"] == {"engine.micro_batch_size": 4}
    assert not (tmp_path / "runs").exists()  # nothing submitted, no run folder


def test_table_on_the_default_toy_run(capsys):
    assert main(["stage=plan", "plan.gpu_memory_gb=24"]) == 0
    out = capsys.readouterr().out
    assert "memory plan for tiny-qwen2.5-vl" in out and "total (peak)" in out and ": fits" in out


def _train(model, *extra):
    cfg, _ = parse(get_preset("train", "easyvideor1"), [f"model={model}", "tasks_per_node=8", *extra])
    return cfg


def test_train_on_slurm_is_refused_with_the_nearest_layout(qwen_dirs, tmp_path, monkeypatch, capsys):
    (tmp_path / "gpus.yaml").write_text("gpus_per_task: 1\ngpu_memory_gb: 80\n")
    monkeypatch.setenv("VRL_PROFILES_DIR", str(tmp_path))
    argv = [
        "stage=train", "preset=easyvideor1", "cluster=slurm", "profile=gpus", f"model={qwen_dirs['Qwen2.5-VL-7B']}",
        "tasks_per_node=8", "engine.param_dtype=bfloat16", "rollout=vllm", f"run_root={tmp_path / 'runs'}",
    ]  # fmt: skip
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "does not fit" in captured.out  # the verdict line
    assert "nearest layout that fits" in captured.err and "engine.micro_batch_size=4" in captured.err
    assert "plan.force=true" in captured.err
    assert not (tmp_path / "runs" / "train").exists() or not any((tmp_path / "runs" / "train").iterdir())

    cfg = _train(
        qwen_dirs["Qwen2.5-VL-7B"],
        "cluster=slurm",
        "profile=gpus",
        "engine.param_dtype=bfloat16",
        "rollout=vllm",
    )
    assert device_bytes(cfg) == 80 * 2**30  # from the profile
    with pytest.raises(ConfigError, match="does not fit"):
        check_before_submit(cfg)
    cfg.plan.force = True
    assert check_before_submit(cfg).fits is False  # forced: no error
    cfg.plan.force = False
    cfg.engine.micro_batch_size = 4
    assert check_before_submit(cfg).fits is True


def test_a_profile_without_gpu_size_is_not_judged(qwen_dirs):
    cfg = _train(qwen_dirs["Qwen2.5-VL-72B"], "cluster=slurm", "profile=local")
    plan = check_before_submit(cfg)
    assert plan.fits is None and "no GPU size given" in plan.verdict()
