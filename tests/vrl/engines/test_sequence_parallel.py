"""Ulysses sequence parallelism: layout and config rules in process; parity with S = 1 over gloo (fp32).

Multi-process parity runs ``sequence_parallel_worker.py`` on 2 (S=2) or 4 (DP=2 × SP=2, S=4) ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vrl.distributed import _sp_groups, sp_coordinates
from vrl.engines.config import EngineConfig, check_sequence_parallel
from vrl.engines.sequence_parallel import _block_causal, _pad_mask
from vrl.engines.vision_sharding import _local_grid, split_units
from vrl.models.tiny import resolve_model

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("sequence_parallel_worker.py")


# ---- in process ------------------------------------------------------------------------------------
def test_sp_ranks_are_consecutive_and_dp_replicas_outer():
    assert [sp_coordinates(r, 4, 2) for r in range(4)] == [
        (0, 2, 0, 2),
        (0, 2, 1, 2),
        (1, 2, 0, 2),
        (1, 2, 1, 2),
    ]
    assert _sp_groups(4, 2) == ([[0, 1], [2, 3]], [[0, 2], [1, 3]])
    with pytest.raises(ValueError, match="does not divide the world size 6"):
        sp_coordinates(0, 6, 4)


def test_config_names_every_failed_rule_and_what_works():
    with pytest.raises(ValueError) as err:
        check_sequence_parallel(EngineConfig(sequence_parallel_size=3, share_prompts=False), 4, 4, 2)
    msg = str(err.value)
    assert "world size 4" in msg and "4 attention heads" in msg and "2 KV heads" in msg
    assert "Values that work here: [1, 2, 4]" in msg
    # 2 KV heads, S = 4: repeated, accepted
    check_sequence_parallel(EngineConfig(sequence_parallel_size=4, share_prompts=False), 8, 4, 2)


def test_config_rejects_what_sequence_parallelism_cannot_run():
    with pytest.raises(ValueError, match="padded shared-prompt pass"):
        EngineConfig(sequence_parallel_size=2).validate()
    with pytest.raises(ValueError, match="fsdp feature"):
        EngineConfig(name="megatron", sequence_parallel_size=2, share_prompts=False).validate()
    with pytest.raises(ValueError, match="attn_implementation=flash_attention_2"):
        EngineConfig(
            sequence_parallel_size=2, share_prompts=False, attn_implementation="flash_attention_2"
        ).validate()
    EngineConfig(sequence_parallel_size=2, packing=True).validate()  # shared prompts through the packed mask


def test_vision_units_split_at_temporal_patches_balanced_by_patch_count():
    assert split_units([4, 4, 4, 4], 2) == [0, 2, 4]
    assert split_units([16, 4, 4, 4, 4], 2) == [0, 1, 5]
    assert split_units([4], 2) == [0, 0, 1]  # fewer units than ranks: a rank encodes nothing
    grid = torch.tensor([[2, 2, 4], [1, 4, 4]])  # a 2-patch video (8 patches each), an image (16)
    g, lo, hi = _local_grid(grid, 1, 3)
    assert g.tolist() == [[1, 2, 4], [1, 4, 4]] and (lo, hi) == (8, 32)
    g, lo, hi = _local_grid(grid, 0, 1)
    assert g.tolist() == [[1, 2, 4]] and (lo, hi) == (0, 8)


def test_packed_rows_get_a_block_causal_mask_and_padding_attends_to_itself():
    pos = torch.tensor([[0, 1, 2, 0, 1]])
    mask = _block_causal(pos, 6)[0, 0]
    assert mask[4].tolist() == [False, False, False, True, True, False]
    assert mask[5].tolist() == [False] * 5 + [True]
    assert _block_causal(torch.arange(5)[None], 6) is None  # one sequence: plain causal
    grown = _pad_mask(torch.zeros(1, 1, 2, 2), 1)[0, 0]
    assert grown[2, 2] == 0 and grown[2, 0] < -1e30


# ---- multi-process ---------------------------------------------------------------------------------
def _launch(mode: str, model: Path, world: int, sp: int, out: Path, port: int) -> None:
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}",
        }
        cmd = [sys.executable, str(WORKER), mode, str(model), str(sp), str(out)]
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))
    try:
        codes = [p.wait(timeout=1200) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0] * world, f"{mode} workers exited with {codes}"


#: temporal patches (vision-tower units) of the fixture prompts: 2 videos of 2 patches, 1 image
DISTINCT_UNITS = 2 + 1 + 2


def _check_model_parity(result: dict, world: int, sp: int) -> None:
    # padded: 3 prompts × 2 responses, each row encodes its own media; packed: 4 prompts × 2; packed with
    # shared prompts: each distinct prompt once
    expected_units = {
        "padded": 2 * DISTINCT_UNITS,
        "packed": 2 * DISTINCT_UNITS,
        "packed_shared": DISTINCT_UNITS,
    }
    for layout, units in expected_units.items():
        r = result[layout]
        assert r["same_params"], layout
        assert r["grad_scale"] > 1e-3, layout  # the gradients compared are not all zero
        assert r["logp"] <= 1e-5, (layout, r)
        assert r["grad"] <= 1e-5, (layout, r)
        # the SP ranks of a group split the units between them: each encodes its share, not all of them
        for group in range(world // sp):
            ranks = r["vision"][group * sp : (group + 1) * sp]
            assert all(v["total"] == units for v in ranks), (layout, ranks)
            assert sum(v["units"] for v in ranks) == units, (layout, ranks)
            assert all(v["units"] > 0 for v in ranks), (layout, ranks)


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_s2_forward_and_backward_equal_the_plain_model(name, tmp_path, _session_vrl_home):
    """S=2 on 2 ranks: log-probs and the (rank-averaged) gradient of one loss equal the unsharded
    model's, padded and packed (with and without shared prompts), video + image + text batch."""
    out = tmp_path / "result.json"
    _launch("model", resolve_model(name), 2, 2, out, 29731 + (name == "tiny-qwen3-vl"))
    _check_model_parity(json.loads(out.read_text()), 2, 2)


def _engine_runs(model: Path, tmp_path: Path, world: int, sp: int, port: int) -> tuple[dict, dict]:
    ref, par = tmp_path / "ref.pt", tmp_path / "sp.pt"
    _launch("engine", model, 1, 1, ref, port)
    _launch("engine", model, world, sp, par, port + 1)
    return torch.load(ref), torch.load(par)


def _same_update(ref: dict, par: dict) -> None:
    """Same gradients as one process (what FSDP applied, averaged over ranks) and same weights after the
    AdamW step (lr 1e-4: a sign error or a factor S moves weights by about lr)."""
    assert set(ref["grads"]) == set(par["grads"]) and ref["grads"]
    for k in ref["grads"]:
        torch.testing.assert_close(par["grads"][k], ref["grads"][k], atol=1e-5, rtol=1e-4, msg=k)
    assert max(float((ref["weights"][k] - par["weights"][k]).abs().max()) for k in ref["weights"]) <= 1e-5


def test_s2_engine_update_equals_one_process(tmp_path, tiny_qwen25):
    """FSDPEngine, engine.sequence_parallel_size=2 on 2 ranks vs 1 rank: log-probs, the gradients and
    the weights after one update agree within 1e-5."""
    ref, par = _engine_runs(tiny_qwen25, tmp_path, 2, 2, 29741)
    assert len(ref["logp"]) == len(par["logp"])
    for a, b in zip(ref["logp"], par["logp"]):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    _same_update(ref, par)


@pytest.mark.integration
def test_dp2_sp2_engine_update_equals_one_process(tmp_path, tiny_qwen25):
    """4 ranks, DP=2 × SP=2: each DP rank takes half of the groups; same update as one process."""
    ref, par = _engine_runs(tiny_qwen25, tmp_path, 4, 2, 29751)
    # rank 0 (DP rank 0) holds groups 0 and 2: trajectories 0, 1, 4, 5 of the one-process run
    for a, b in zip([ref["logp"][i] for i in (0, 1, 4, 5)], par["logp"]):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    _same_update(ref, par)


@pytest.mark.integration
def test_s4_repeats_kv_heads_and_equals_the_plain_model(tmp_path, tiny_qwen25):
    """S=4 on 4 ranks with 2 KV heads (each repeated twice): same log-probs and gradients."""
    out = tmp_path / "result.json"
    _launch("model", tiny_qwen25, 4, 4, out, 29761)
    _check_model_parity(json.loads(out.read_text()), 4, 4)
