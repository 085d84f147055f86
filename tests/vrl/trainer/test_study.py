"""The algorithm study: every arm is a valid training config, the table and figure from arm runs, and a
shortened study end to end (2 algorithms × 2 seeds, 2 RL steps, tiny) through the launcher."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vrl.config import ConfigError, parse
from vrl.launch.context import RunContext
from vrl.trainer import study

ROOT = Path(__file__).resolve().parents[3]


def test_every_arm_is_a_valid_training_config():
    cfg, _ = parse(study.Config, ["warm_start=/m", "seeds=[4,5]", "train.rollout.max_response_length=48"])
    assert study.plan(cfg)[:2] == [{"arm": "grpo", "seed": 4}, {"arm": "grpo", "seed": 5}]
    assert len(study.plan(cfg)) == 2 * len(study.ARMS)
    for arm in study.ARMS:
        t = study.arm_config(cfg, arm, 5)
        assert (t.model, t.warmup.sft_steps, t.trainer.seed, t.trainer.export_final) == ("/m", 0, 5, False)
    assert study.arm_config(cfg, "drgrpo", 1).algorithm.token_sum_norm == 48.0
    assert study.arm_config(cfg, "dapo", 1).algorithm.dynamic_sampling is True
    assert study.arm_config(cfg, "gspo", 1).algorithm.ratio_level == "sequence"
    assert study.arm_config(cfg, "cispo", 1).algorithm.policy_loss == "cispo"
    assert study.arm_config(cfg, "reinforce_pp", 1).algorithm.advantage == "reinforce_plus_plus"


def test_wrong_settings_are_refused():
    with pytest.raises(ConfigError, match="known: grpo"):
        parse(study.Config, ["algorithms=[grpo,ppo2]"])
    with pytest.raises(ConfigError, match="distinct"):
        parse(study.Config, ["seeds=[1,1]"])
    cfg, _ = parse(study.Config, [])
    with pytest.raises(ConfigError, match="warm_start is empty"):
        study.arm_config(cfg, "grpo", 1)
    with pytest.raises(ConfigError, match="is not a model folder"):
        study.check(cfg)


def fake_arm(run_dir: Path, arm: str, seed: int, accs: list[float]) -> None:
    d = study.task_dir(run_dir, arm, seed)
    d.mkdir(parents=True)
    rows = [{"step": 0, "val/accuracy": accs[0]}]
    for step in (1, 2):
        row = {"step": step, "reward/overall": 0.5, "actor/entropy": 1.0, "response/length_mean": 6.0}
        rows.append({**row, "perf/step_s": 3.0 if step == 1 else 2.0, "val/accuracy": accs[step]})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "summary.json").write_text("{}")


def test_finalize_writes_the_table_json_and_figure(tmp_path):
    cfg, _ = parse(study.Config, ["algorithms=[grpo,rloo]", "seeds=[1,2]", "val_every=1", "warm_start=/m"])
    fake_arm(tmp_path, "grpo", 1, [0.5, 0.6, 0.7])
    fake_arm(tmp_path, "grpo", 2, [0.5, 0.6, 0.9])
    fake_arm(tmp_path, "rloo", 1, [0.5, 0.5, 0.5])  # seed 2 missing
    out = study.finalize(cfg, RunContext(tmp_path))
    assert out["missing"] == ["rloo seed 2"]
    text = (tmp_path / "study.md").read_text()
    assert "| grpo | 2 | 0.500 ± 0.000 | 0.600 ± 0.000 | 0.800 ± 0.141 | 0.300 ± 0.141 | +0.200 |" in text
    assert "| 2.00 ± 0.00 |" in text and "rloo (seeds [2])" in text
    data = json.loads((tmp_path / "study.json").read_text())
    assert data["arms"]["grpo"]["runs"]["2"]["curve"] == {"0": 0.5, "1": 0.6, "2": 0.9}
    assert (tmp_path / "study.png").stat().st_size > 0


#: the smallest study runs: 2 warm-start steps, 2 RL steps, 8 records
TINY = [
    "train.toy.num_train=8",
    "train.toy.num_val=4",
    "train.toy.families=[color,boolean]",
    "train.data.video_source=decode",
    "train.rollout.n=2",
    "train.rollout.max_response_length=8",
    "train.trainer.rollout_batch_size=2",
    "train.trainer.total_steps=2",
    "train.trainer.save_every=0",
    "train.warmup.sft_steps=2",
    "train.warmup.batch_size=4",
]


@pytest.mark.integration
def test_a_shortened_study_end_to_end(tmp_path):
    args = ["algorithms=[grpo,rloo]", "seeds=[1,2]", "val_every=1", f"run_root={tmp_path}", "name=s", *TINY]
    out = subprocess.run(
        [sys.executable, "-m", "vrl.trainer.study", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=3000,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "train" / "s-warmstart" / "final" / "config.json").exists()
    run = tmp_path / "study" / "s"
    data = json.loads((run / "study.json").read_text())
    for arm in ("grpo", "rloo"):
        runs = data["arms"][arm]["runs"]
        assert sorted(runs) == ["1", "2"] and all(r["rl_steps"] == 2 for r in runs.values())
        assert all(sorted(r["curve"]) == ["0", "1", "2"] for r in runs.values())
    assert "| grpo | 2 |" in (run / "study.md").read_text() and (run / "study.png").exists()

    # the same command again: every run is found complete, none is trained again, the table is rewritten
    arm = run / "arms" / "grpo-seed1"
    kept = {f: (arm / f).read_bytes() for f in ("metrics.jsonl", "summary.json", "study_task.json")}
    (run / "study.md").unlink()
    again = subprocess.run(
        [sys.executable, "-m", "vrl.trainer.study", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=3000,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert {f: (arm / f).read_bytes() for f in kept} == kept
    assert "| rloo | 2 |" in (run / "study.md").read_text()


@pytest.mark.integration
def test_the_study_runs_as_a_slurm_job_array(slurm_cluster, tmp_path):
    """On the real local Slurm cluster: the warm start is one job, the arms one job array (a task per arm
    and seed), and the table comes from the finalize job that depends on it."""
    args = [
        "algorithms=[grpo]", "seeds=[1,2]", "val_every=1", f"run_root={tmp_path}", "name=sl",
        "cluster=slurm", "profile=local", *TINY,
    ]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "vrl.trainer.study", *args],
        cwd=tmp_path, env=slurm_cluster.env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (warm,) = re.findall(r"submitted train: job (\S+)", out.stdout)
    assert slurm_cluster.wait_state(warm, ["COMPLETED"], timeout=60) == "COMPLETED"
    jobs = re.findall(r"submitted study: job (\S+)", out.stdout)
    tasks, final = [j for j in jobs if "_" in j], [j for j in jobs if "_" not in j]
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1 and len(final) == 1, out.stdout
    for job in (*tasks, *final):
        assert slurm_cluster.wait_state(job, ["COMPLETED"], timeout=60) == "COMPLETED"
    run = tmp_path / "study" / "sl"
    assert sorted(json.loads((run / "study.json").read_text())["arms"]["grpo"]["runs"]) == ["1", "2"]
    assert "| grpo | 2 |" in (run / "study.md").read_text()
