import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("vllm_generate.py")


def _run(model_dir: Path, tmp_path: Path) -> dict:
    env = dict(
        os.environ,
        VLLM_CPU_KVCACHE_SPACE="1",
        TMPDIR=str(tmp_path),
        TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"),
    )
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(model_dir)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.integration
@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_vllm_cpu_serves_tiny_model_like_transformers(name, tmp_path, built_models):
    """vLLM (CPU, float32) loads the tiny model and answers text, image and video prompts like HF.

    Same prompt ids, first-token log-probs within 1e-4 (measured ≤ 1e-6) and the same 8 greedy tokens.
    (Qwen3-VL video only agreed once its image and video processors share one pixel normalization.)
    """
    results = _run(built_models[name], tmp_path)
    assert set(results) == {"text", "image", "video"}
    for case, res in results.items():
        assert res["prompt_ids_equal"], case
        assert len(res["vllm_ids"]) == 8, case
        assert res["max_logprob_diff"] < 1e-4, (case, res)
        assert res["vllm_ids"] == res["hf_ids"], case
