"""Resuming never runs code from the checkpoint: each file a resume reads, replaced by a crafted pickle, is
refused with an error naming it, and the crafted payload never runs. A genuine checkpoint still resumes."""

from __future__ import annotations

import dataclasses
import io
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.safe_load import UnsafeFileError
from vrl.trainer import checkpoint as ckpt


class Plant:
    """Unpickling it creates ``marker``: a crafted file would run any code the same way."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def saved(tiny_qwen25, tmp_path_factory):
    """A real checkpoint of the FSDP engine (tiny model) and the engine that wrote it."""
    dist_ctx = init_distributed()
    engine = FSDPEngine(EngineConfig(lr=1e-3), tiny_qwen25, dist_ctx, total_steps=4)
    run = tmp_path_factory.mktemp("run")
    path = ckpt.save_checkpoint(run, 3, engine, {"step": 3}, dist_ctx, export_hf=False)
    return engine, dist_ctx, path


def _copy(path: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(path, tmp_path / path.name))


def test_a_genuine_checkpoint_resumes_with_the_same_rng_streams(saved, tmp_path):
    engine, dist_ctx, _ = saved
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    ckpt.save_checkpoint(tmp_path, 1, engine, {"step": 1}, dist_ctx, export_hf=False)
    want = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), engine, dist_ctx)
    assert state == {"step": 1}
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == want


def test_a_planted_rng_state_is_refused(saved, tmp_path):
    engine, dist_ctx, path = saved
    path = _copy(path, tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"python": Plant(marker)}, path / "rng" / "rank_0.pt")
    with pytest.raises(UnsafeFileError, match=r"rng/rank_0\.pt"):
        ckpt.load_checkpoint(path, engine, dist_ctx)
    assert not marker.exists()


def test_a_planted_engine_metadata_is_refused(saved, tmp_path):
    engine, dist_ctx, path = saved
    path = _copy(path, tmp_path)
    marker = tmp_path / "pwned"
    (path / "engine" / "dcp" / ".metadata").write_bytes(pickle.dumps(Plant(marker)))
    with pytest.raises(UnsafeFileError, match=r"\.metadata"):
        ckpt.load_checkpoint(path, engine, dist_ctx)
    assert not marker.exists()


def test_a_planted_optimizer_item_is_refused(saved, tmp_path):
    engine, dist_ctx, path = saved
    path = _copy(path, tmp_path)
    marker = tmp_path / "pwned"
    payload = io.BytesIO()
    torch.save(Plant(marker), payload)
    dcp_dir = path / "engine" / "dcp"
    (dcp_dir / "crafted.distcp").write_bytes(payload.getvalue())
    meta = pickle.loads((dcp_dir / ".metadata").read_bytes())  # genuine, written by the fixture
    key = next(k for k in meta.storage_data if k.fqn.endswith("param_groups.0.weight_decay"))
    meta.storage_data[key] = dataclasses.replace(
        meta.storage_data[key], relative_path="crafted.distcp", offset=0, length=len(payload.getvalue())
    )
    (dcp_dir / ".metadata").write_bytes(pickle.dumps(meta))
    with pytest.raises(UnsafeFileError, match=r"weight_decay"):
        ckpt.load_checkpoint(path, engine, dist_ctx)
    assert not marker.exists()
