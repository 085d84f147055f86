"""The engine benchmark runs end to end on a tiny workload: its table, JSON and row structure, packed rows
without padding, and packed log-probs equal to padded ones."""

from __future__ import annotations

import json

from vrl.engines.benchmark import ROWS, main


def test_benchmark_writes_the_table_and_the_numbers(tiny_qwen25, tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = [
        f"model={tiny_qwen25}",
        "num_prompts=4",
        "min_frames=2",
        "max_frames=6",
        "min_response=3",
        "max_response=9",
        "micro_batch_size=2",
        "steps=1",
        "warmup=0",
    ]
    assert main([*args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = {r["row"]: r for r in doc["rows"]}
    assert set(rows) == set(ROWS)
    padding = rows["padding"]
    assert padding["contenders"]["packed"] == 1.0 and padding["contenders"]["padded"] > 1.0
    update = rows["update"]
    assert update["logprob_max_abs_diff"] < 1e-5
    assert all(len(v) == 1 and v[0] > 0 for v in update["all_s"].values())
    assert doc["table"] in capsys.readouterr().out
    assert main(["rows=[sp_memory]"]) == 2  # unknown rows fail with the list of known ones
