import hashlib
import re
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vrl.models import tiny
from vrl.models.tiny import build_tiny, get_spec, model_dir, resolve_model, tiny_names

NAMES = ["tiny-qwen2.5-vl", "tiny-qwen3-vl"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_registry_lists_both_families():
    assert tiny_names() == sorted(NAMES)
    with pytest.raises(ValueError, match=re.escape("tiny-qwen2.5-vl, tiny-qwen3-vl")):
        get_spec("tiny-llama")


@pytest.mark.parametrize("name", NAMES)
def test_build_is_deterministic(name, tmp_path, built_models):
    again = build_tiny(get_spec(name), tmp_path / "again")
    for fname in ("tokenizer.json", "model.safetensors", "config.json", "processor_config.json"):
        assert _sha(again / fname) == _sha(built_models[name] / fname), fname


@pytest.mark.parametrize("name", NAMES)
def test_sizes_fit_vllm_cpu_and_stay_small(name, built_models):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(built_models[name])
    text = cfg.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    assert head_dim == 32
    assert sum(text.rope_parameters["mrope_section"]) == head_dim // 2
    assert cfg.tie_word_embeddings
    assert text.vocab_size % 64 == 0 and text.vocab_size < 4096
    assert (built_models[name] / "model.safetensors").stat().st_size < 10_000_000


def test_resolve_model_paths_and_errors(tmp_path, monkeypatch, tiny_home, built_models):
    monkeypatch.setenv("VRL_HOME", str(tiny_home))
    target = resolve_model("tiny-qwen2.5-vl")
    assert target == model_dir("tiny-qwen2.5-vl") == built_models["tiny-qwen2.5-vl"]
    assert target.parent == tiny_home / "models"
    assert target.name.startswith("tiny-qwen2.5-vl-")
    assert resolve_model(str(target)) == target
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=re.escape("no config.json")):
        resolve_model(tmp_path / "empty")
    with pytest.raises(ValueError, match=re.escape("Registered tiny models: tiny-qwen2.5-vl, tiny-qwen3-vl")):
        resolve_model("no-such-model")


def test_hash_changes_with_definition():
    spec = get_spec("tiny-qwen2.5-vl")
    assert replace(spec, seed=1).short_hash() != spec.short_hash()
    assert replace(spec, seed=0).short_hash() == spec.short_hash()


def test_concurrent_resolve_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("VRL_HOME", str(tmp_path))
    calls = []

    def fake_build(spec, out):
        calls.append(spec.name)
        (Path(out) / "config.json").write_text("{}")
        return Path(out)

    monkeypatch.setattr(tiny, "build_tiny", fake_build)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(resolve_model("tiny-qwen3-vl"))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["tiny-qwen3-vl"]
    assert len(set(results)) == 1 and (results[0] / "config.json").is_file()
    assert not [p for p in (tmp_path / "models").iterdir() if p.is_dir() and p != results[0]]


def test_failed_build_leaves_no_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("VRL_HOME", str(tmp_path))

    def broken_build(spec, out):
        raise RuntimeError("boom")

    monkeypatch.setattr(tiny, "build_tiny", broken_build)
    with pytest.raises(RuntimeError):
        resolve_model("tiny-qwen3-vl")
    assert not [p for p in (tmp_path / "models").iterdir() if p.is_dir()]


def _video_prompt(processor, with_image: bool):
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (4, 90, 121, 3), dtype=np.uint8)  # odd width on purpose
    content = [{"type": "video"}, {"type": "text", "text": "What color is the square?"}]
    images = None
    if with_image:
        content.insert(1, {"type": "image"})
        images = [rng.integers(0, 256, (77, 101, 3), dtype=np.uint8)]
    text = processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )
    meta = {"fps": 2.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3], "duration": 2.0}
    return processor(
        text=[text],
        videos=[video],
        images=images,
        video_metadata=[meta],
        do_sample_frames=False,
        return_tensors="pt",
    )


@pytest.mark.parametrize("name", NAMES)
def test_transformers_generate_and_reload(name, tmp_path, built_models):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(built_models[name])
    model = AutoModelForImageTextToText.from_pretrained(built_models[name]).eval()
    inputs = _video_prompt(processor, with_image=True)
    assert inputs["video_grid_thw"].tolist()[0][0] == 2  # 4 frames / temporal patch 2
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    model.save_pretrained(tmp_path / "resaved")
    processor.save_pretrained(tmp_path / "resaved")
    again = AutoModelForImageTextToText.from_pretrained(tmp_path / "resaved").eval()
    assert torch.equal(again.generate(**inputs, max_new_tokens=8, do_sample=False), out)


@pytest.mark.parametrize("name", NAMES)
def test_processor_keeps_small_frames_small(name, built_models):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(built_models[name])
    grid = _video_prompt(processor, with_image=False)["video_grid_thw"].tolist()[0]
    patch = get_spec(name).vision["patch_size"]
    # a 90×121 frame stays near its size (rounded to multiples of 2 patches), not upscaled
    assert grid[1] * patch <= 2 * 90 and grid[2] * patch <= 2 * 121
