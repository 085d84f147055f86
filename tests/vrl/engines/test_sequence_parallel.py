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
from vrl.engines.packing import attention_blocks
from vrl.engines.sequence_parallel import _packed_blocks, _pad_mask
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


def test_packed_rows_run_block_by_block_and_padding_stays_last():
    # two packed sequences (3 and 2 tokens) then one padding token continuing the last one's positions
    pos = torch.tensor([[0, 1, 2, 0, 1, 2]])
    assert _packed_blocks(pos) == [(0, 3, 3, None), (3, 6, 6, None)]
    assert _packed_blocks(torch.arange(5)[None]) is None  # one sequence: plain causal
    assert _packed_blocks(torch.tensor([[0, 1, 2], [0, 1, 0]])) is None  # padded rows: causal
    grown = _pad_mask(torch.zeros(1, 1, 2, 2), 1)[0, 0]
    assert grown[2, 2] == 0 and grown[2, 0] < -1e30


def test_shared_prompt_blocks_are_the_shared_prefix_mask_without_a_t_by_t_tensor():
    # prompt of 3 tokens, responses of 2 and 1 tokens (positions restart at the prompt length), then a
    # plain sequence of 2 tokens
    pos = torch.tensor([0, 1, 2, 3, 4, 3, 0, 1])
    blocks = attention_blocks(pos)
    assert [(a, pb, e) for a, pb, e, _ in blocks] == [(0, 3, 6), (6, 8, 8)]
    mask = blocks[0][3][0, 0]
    assert mask.shape == (3, 6)  # response tokens × sequence length
    assert mask.tolist() == [
        [True, True, True, True, False, False],
        [True, True, True, True, True, False],
        [True, True, True, False, False, True],
    ]
    assert blocks[1][3] is None


def test_blocked_attention_equals_sdpa_under_the_dense_mask():
    """Blocks (a shared prompt with two responses, then a plain sequence) give the values and gradients
    of one sdpa under the dense mask they stand for."""
    import torch.nn.functional as F

    from vrl.engines.packing import blocked_attention

    pos = torch.tensor([*range(6), 6, 7, 8, 6, 7, *range(4)])
    blocks = attention_blocks(pos)
    t = pos.numel()
    dense = torch.zeros(t, t, dtype=torch.bool)
    for a, pb, e, mask in blocks:
        dense[a:pb, a:pb] = torch.ones(pb - a, pb - a, dtype=torch.bool).tril()
        if mask is not None:
            dense[pb:e, a:e] = mask[0, 0]
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, t, 8, generator=gen, requires_grad=True) for _ in range(3))

    def attend(q, k, v, mask):
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    got = blocked_attention(q, k, v, blocks, attend)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    grads = torch.autograd.grad(got.square().sum(), (q, k, v))
    want = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for g, w in zip(grads, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=0)
    # the second response (tokens 9, 10) sees the prompt and itself, not the first response
    assert dense[9].tolist() == [True] * 6 + [False] * 3 + [True, False] + [False] * 4


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
    # with the engine's media plan (all but padded_full_pixels) each distinct prompt is encoded once per
    # micro-batch; the model encoding the pixels itself encodes every row's copy
    expected_units = {
        "padded": DISTINCT_UNITS,
        "padded_full_pixels": 2 * DISTINCT_UNITS,
        "packed": DISTINCT_UNITS,
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
            assert sum(v["units"] > 0 for v in ranks) >= 2, (layout, ranks)  # the work is split
        if layout != "padded_full_pixels":  # each rank received only the pixel rows it encodes
            rows = r["pixel_rows"]
            for group in range(world // sp):
                ranks = rows[group * sp : (group + 1) * sp]
                assert all(0 <= v["local"] < v["full"] for v in ranks), (layout, ranks)
                assert sum(v["local"] for v in ranks) <= ranks[0]["full"], (layout, ranks)


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
