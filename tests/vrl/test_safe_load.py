"""Files read back load without running code: torch's weights-only loader and a restricted unpickler."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import torch

from vrl.safe_load import UnsafeFileError, load_tensors, restricted_load


class Plant:
    """Unpickling it creates ``marker``: a crafted file would run any code the same way."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_tensors_and_plain_data_load(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "step": 3, "betas": (0.9, 0.99), "name": "x", "none": None}
    torch.save(state, tmp_path / "ok.pt")
    got = load_tensors(tmp_path / "ok.pt")
    assert torch.equal(got["w"], state["w"]) and {k: got[k] for k in ("step", "betas", "name", "none")} == {
        "step": 3,
        "betas": (0.9, 0.99),
        "name": "x",
        "none": None,
    }


def test_a_planted_torch_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": {"w": torch.zeros(2)}, "x": Plant(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeFileError, match=r"evil\.pt.*\bopen\b") as err:
        load_tensors(tmp_path / "evil.pt")
    assert "weights_only=False" not in str(err.value)  # no advice to turn the protection off
    assert not marker.exists()


def test_the_restricted_unpickler_admits_only_the_named_types(tmp_path):
    marker = tmp_path / "pwned"
    allowed = {"pathlib": {"PurePosixPath"}}
    data = pickle.dumps({"p": Path("a/b").as_posix(), "q": __import__("pathlib").PurePosixPath("a/b")})
    assert restricted_load(io.BytesIO(data), allowed, "test data")["q"].parts == ("a", "b")
    with pytest.raises(UnsafeFileError, match=r"test data.*\bopen\b"):
        restricted_load(io.BytesIO(pickle.dumps([1, Plant(marker)])), allowed, "test data")
    assert not marker.exists()
