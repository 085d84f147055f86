"""The engine benchmark runs end to end on a tiny workload: its table, JSON and row structure, packed rows
without padding, packed log-probs equal to padded ones, and the sequence-parallel rows on a short video
at S = 1, 2 (two gloo processes)."""

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
        "sp_sizes=[1,2]",
        "sp_frames=8",
        "sp_frame_side=56",
        "sp_response=5",
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
    memory = rows["sp_memory"]
    assert set(memory["contenders"]) == {"S=1", "S=2"} and all(v > 0 for v in memory["contenders"].values())
    assert len(memory["per_rank_mib"]["S=2"]) == 2  # every rank's peak, measured in its own process
    # sharding the sequence lowers each rank's activations even on an 8-frame video
    assert memory["ratio"]["values"]["S=2"] < 1.0
    # each rank holds the pixel patches of its own frames only: half of the video's at S=2
    assert memory["input_mib"]["S=2"] < 0.75 * memory["input_mib"]["S=1"]
    frames = rows["sp_frames"]
    assert frames["contenders"]["S=1"] == 8  # the default cap is S=1's measured total at sp_frames
    assert frames["contenders"]["S=2"] > 8
    assert doc["table"] in capsys.readouterr().out
    assert main(["rows=[nope]"]) == 2  # unknown rows fail with the list of known ones
    assert main(["sp_sizes=[2,4]"]) == 2  # S=1 is the reference: first
