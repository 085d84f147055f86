"""The megatron engine's checkpoints never run code from disk: the current format is safetensors + JSON (a
pickle planted in place of a shard is refused as malformed), and a first-format checkpoint (per-rank torch
files) loads weights-only: a genuine one (after an update, so the optimizer holds moments) restores, a
crafted one is refused and its payload never runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from engine_ops import build_engine, grpo_update
from mm_batch import multimodal_trajectories

from vrl.models.loading import load_processor
from vrl.safe_load import UnsafeFileError


class Plant:
    """Unpickling it creates ``marker``: a crafted file would run any code the same way."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _same_weights(a, b) -> None:
    for (name, x), (_, y) in zip(a.rollout_weights(), b.rollout_weights()):
        assert torch.equal(x, y), name


def test_a_genuine_first_format_shard_loads_and_a_planted_one_is_refused(one_process, mg_models, tmp_path):
    path = mg_models["tiny-qwen2.5-vl"]
    engine = build_engine({}, one_process, path)
    grpo_update(engine, multimodal_trajectories(load_processor(path)), one_process)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    shard = ckpt / "mp_rank_00_000.pt"  # what the first format's save wrote
    state = {
        "model": engine.policy.state_dict(),
        "optimizer": engine.optimizer.state_dict(),
        "scheduler": engine.scheduler.state_dict(),
    }
    torch.save(state, shard)
    (ckpt / "layout.json").write_text(json.dumps({"tensor_parallel_size": 1, "pipeline_parallel_size": 1}))
    fresh = build_engine({}, one_process, path)
    fresh.load(ckpt)
    _same_weights(engine, fresh)

    marker = tmp_path / "pwned"
    torch.save({"model": {}, "optimizer": Plant(marker), "scheduler": {}}, shard)
    with pytest.raises(UnsafeFileError, match=shard.name):
        fresh.load(ckpt)
    assert not marker.exists()


def test_a_pickle_planted_as_a_safetensors_shard_is_refused(one_process, mg_models, tmp_path):
    path = mg_models["tiny-qwen2.5-vl"]
    engine = build_engine({}, one_process, path)
    engine.save(tmp_path / "ckpt")
    assert not list((tmp_path / "ckpt").glob("*.pt"))  # safetensors and JSON only
    marker = tmp_path / "pwned"
    shard = tmp_path / "ckpt" / "model_tp00_pp000.safetensors"
    torch.save({"model": Plant(marker)}, shard)
    with pytest.raises(Exception, match=r"(?i)header|deserializ|invalid"):
        build_engine({}, one_process, path).load(tmp_path / "ckpt")
    assert not marker.exists()
