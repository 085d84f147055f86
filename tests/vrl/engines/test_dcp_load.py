"""torch distributed checkpoints (DCP) load without running code: its ``.metadata`` through a restricted
unpickler, its non-tensor items weights-only. A crafted checkpoint is refused and its payload never runs."""

from __future__ import annotations

import dataclasses
import io
import pickle
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

from vrl.engines.dcp_load import load_dcp
from vrl.safe_load import UnsafeFileError


class Plant:
    """Unpickling it creates ``marker``: a crafted file would run any code the same way."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _save(state: dict, path: Path) -> None:
    with warnings.catch_warnings():  # "torch.distributed is ... uninitialized ... single process"
        warnings.simplefilter("ignore", UserWarning)
        dcp.save(state, checkpoint_id=str(path))


def _load(state: dict, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        load_dcp(state, path)


def _model_and_optimizer(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def _state(model, opt) -> dict:
    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}


def test_a_model_and_optimizer_round_trip(tmp_path):
    model, opt = _model_and_optimizer(0)
    _save(_state(model, opt), tmp_path / "dcp")
    other, other_opt = _model_and_optimizer(1)
    state = _state(other, other_opt)
    _load(state, tmp_path / "dcp")
    assert torch.equal(state["model"]["weight"], model.weight.detach())
    assert state["optim"]["param_groups"][0]["betas"] == (0.8, 0.9)  # a non-tensor (bytes) item
    assert torch.equal(state["optim"]["state"]["weight"]["exp_avg"], opt.state[model.weight]["exp_avg"])


def test_a_planted_metadata_file_is_refused(tmp_path):
    model, opt = _model_and_optimizer(0)
    _save(_state(model, opt), tmp_path / "dcp")
    marker = tmp_path / "pwned"
    (tmp_path / "dcp" / ".metadata").write_bytes(pickle.dumps(Plant(marker)))
    with pytest.raises(UnsafeFileError, match=r"\.metadata.*\bopen\b"):
        _load(_state(*_model_and_optimizer(1)), tmp_path / "dcp")
    assert not marker.exists()


def test_a_planted_non_tensor_item_is_refused(tmp_path):
    """The metadata is genuine; one of its byte items (an optimizer hyperparameter) now points at a
    crafted torch.save payload, which DCP's default planner would load with weights_only=False."""
    model, opt = _model_and_optimizer(0)
    _save(_state(model, opt), tmp_path / "dcp")
    marker = tmp_path / "pwned"
    payload = io.BytesIO()
    torch.save(Plant(marker), payload)
    (tmp_path / "dcp" / "crafted.distcp").write_bytes(payload.getvalue())
    meta_path = tmp_path / "dcp" / ".metadata"
    meta = pickle.loads(meta_path.read_bytes())  # our own file, written just above
    key = next(k for k in meta.storage_data if k.fqn == "optim.param_groups.0.lr")
    meta.storage_data[key] = dataclasses.replace(
        meta.storage_data[key], relative_path="crafted.distcp", offset=0, length=len(payload.getvalue())
    )
    meta_path.write_bytes(pickle.dumps(meta))
    with pytest.raises(UnsafeFileError, match=r"optim\.param_groups\.0\.lr.*\bopen\b"):
        _load(_state(*_model_and_optimizer(1)), tmp_path / "dcp")
    assert not marker.exists()
