"""The megatron engine's checkpoint shards load weights-only: a genuine one (after an update, so the
optimizer holds moments) restores, a crafted one is refused and its payload never runs."""

from __future__ import annotations

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


def test_a_genuine_shard_loads_and_a_planted_one_is_refused(one_process, mg_models, tmp_path):
    path = mg_models["tiny-qwen2.5-vl"]
    engine = build_engine({}, one_process, path)
    grpo_update(engine, multimodal_trajectories(load_processor(path)), one_process)
    engine.save(tmp_path / "ckpt")
    fresh = build_engine({}, one_process, path)
    fresh.load(tmp_path / "ckpt")
    for (name, a), (_, b) in zip(engine.rollout_weights(), fresh.rollout_weights()):
        assert torch.equal(a, b), name

    marker = tmp_path / "pwned"
    (shard,) = (tmp_path / "ckpt").glob("mp_rank_*.pt")
    torch.save({"model": {}, "optimizer": Plant(marker), "scheduler": {}}, shard)
    with pytest.raises(UnsafeFileError, match=shard.name):
        fresh.load(tmp_path / "ckpt")
    assert not marker.exists()
