"""GPU tier: evaluation through vLLM's ``AsyncLLM`` on CUDA (bfloat16), end to end through the eval stage.
Modelled on test_vllm_eval.py: same prompts as the transformers engine (token for token, checked inside
the engine too), an answer for every sample, no errors. Greedy answers are not compared: bf16 vLLM and
the fp32 reference may take different argmaxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vrl.toy import ToyConfig, ensure_toy_suite

pytestmark = pytest.mark.gpu
REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, suite: Path, name: str, *extra: str) -> dict[str, dict]:
    args = [
        sys.executable, str(REPO / "jobs" / "submit.py"), "stage=eval", "cluster=local", f"name={name}",
        f"run_root={tmp_path / 'runs'}", f"toy.out={suite}", "toy.num_train=0", "toy.num_val=12", "toy.seed=2",
        "max_samples=6", "max_new_tokens=12", "progress=false", "inference.max_model_len=4096", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=480)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = (tmp_path / "runs" / "eval" / name / "predictions" / "toy.jsonl").read_text().splitlines()
    return {x["key"]: x for x in map(json.loads, lines)}


def test_async_llm_on_cuda_answers_every_sample(tmp_path):
    suite = ensure_toy_suite(ToyConfig(num_train=0, num_val=12, seed=2, out=str(tmp_path / "suite")))
    vllm = _run(tmp_path, suite, "vllm", "engine=vllm", "inference.gpu_memory_utilization=0.3")
    hf = _run(tmp_path, suite, "hf", "engine=hf", "batch_size=1")
    assert len(vllm) == 6 and {x["engine"] for x in vllm.values()} == {"vllm"}
    for key, line in vllm.items():
        assert line["error"] is None and line["response"] is not None
        assert line["prompt_tokens"] == hf[key]["prompt_tokens"]
