"""Tensor, pipeline and data parallel layouts (multi-process, gloo): each equals the HF model and the FSDP
engine on the same multimodal batch (images and video). One launch per layout runs ``dist_worker.suite``:
log-probs, HF export (bit-exact round trip), one GRPO update, save + load."""

from __future__ import annotations

import pytest
from dist_worker import suite
from launch import run_ranks
from parity import check_export_bit_exact, check_logprobs, check_update, loss_total

pytestmark = pytest.mark.integration

LAYOUTS = {
    # id: (model, world, worker kwargs)
    "qwen2.5-tp2": ("tiny-qwen2.5-vl", 2, {"tp": 2}),
    "qwen2.5-pp2": ("tiny-qwen2.5-vl", 2, {"pp": 2, "num_microbatches": 2, "micro_batch_size": 1}),
    "qwen2.5-tp2pp2": ("tiny-qwen2.5-vl", 4, {"tp": 2, "pp": 2, "num_microbatches": 2}),
    "qwen2.5-tp2dp2": ("tiny-qwen2.5-vl", 4, {"tp": 2, "shard": True, "micro_batch_size": 1}),
    "qwen3-tp2pp2": ("tiny-qwen3-vl", 4, {"tp": 2, "pp": 2, "num_microbatches": 2, "micro_batch_size": 1}),
}


@pytest.fixture(scope="module")
def fsdp_results(one_process, mg_models, tmp_path_factory):
    out = {}
    for name in {model for model, _, _ in LAYOUTS.values()}:
        kw = {"engine": "fsdp", "model": str(mg_models[name]), "export": False, "save_load": False}
        out[name] = suite(kw, one_process, mg_models[name], tmp_path_factory.mktemp("fsdp"))
    return out


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_matches_hf_and_fsdp(layout, mg_models, hf_reference, fsdp_results, tmp_path):
    name, world, kw = LAYOUTS[layout]
    results = run_ranks("suite", world, tmp_path, model=str(mg_models[name]), **kw)
    tp, pp = kw.get("tp", 1), kw.get("pp", 1)
    total = loss_total(results)
    for rank, result in enumerate(results):
        # megatron's rank order "tp-cp-ep-dp-pp": dp rank between the tensor and pipeline coordinates
        assert (result["dp_rank"], result["dp_size"]) == (
            (rank // tp) % (world // (tp * pp)),
            world // (tp * pp),
        )
        check_logprobs(result, hf_reference[name])
        check_update(result, fsdp_results[name], total)
        assert result["reloaded_equal"] and result["reloaded_optimizer_steps"] == 1
    assert check_export_bit_exact(tmp_path / "export", mg_models[name]) > 50
