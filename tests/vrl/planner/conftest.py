"""Fixtures of the planner tests: the tiny checkpoints, and model folders holding only the config.json
of Qwen2.5-VL-7B/32B/72B (what the planner reads; no weights exist here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qwen_configs import QWEN25_VL

TINY = ("tiny-qwen2.5-vl", "tiny-qwen3-vl")


@pytest.fixture(scope="session")
def tiny_models(_session_vrl_home: None) -> dict[str, Path]:
    from vrl.models.tiny import resolve_model

    return {name: resolve_model(name) for name in TINY}


@pytest.fixture(scope="session")
def qwen_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qwen_configs")
    out = {}
    for name, config in QWEN25_VL.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps(config))
        out[name] = root / name
    return out
