"""Load a policy and its processor from a registered tiny-model name or a Hugging Face directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from vrl.models.tiny import resolve_model

PROCESSOR_FILES = (
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "generation_config.json",
)


def load_hf_model(
    path: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> Any:
    """A ``*ForConditionalGeneration`` Qwen-VL model from a local directory (eager attention on CPU).

    Its vision tower accepts uint8 video patches and normalises them itself (:mod:`vrl.models.pixels`)."""
    from transformers import AutoModelForImageTextToText

    from vrl.models.pixels import accept_uint8_patches

    directory = resolve_model(path)
    model = AutoModelForImageTextToText.from_pretrained(str(directory), dtype=dtype)
    accept_uint8_patches(model, directory)
    return model.to(device) if device is not None else model


def load_processor(path: str | Path, fast_video: bool = True, uint8_patches: bool = False) -> Any:
    """The checkpoint's HF processor; ``fast_video`` installs the exact uint8 fast path for pre-sampled,
    pre-resized frames (cache_builder.fast_processing: bit-identical outputs, a fraction of the time);
    ``uint8_patches`` (with it) leaves the video normalisation to the model's vision tower."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(resolve_model(path)))
    if fast_video:
        from cache_builder.fast_processing import accelerate

        accelerate(processor, uint8_patches=uint8_patches)
    return processor


def model_family(path: str | Path) -> str:
    """``qwen2_5_vl`` or ``qwen3_vl`` from the checkpoint's config (the cache spec family names)."""
    from transformers import AutoConfig

    model_type = AutoConfig.from_pretrained(str(resolve_model(path))).model_type
    families = {"qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl"}
    if model_type not in families:
        raise ValueError(f"unsupported model type '{model_type}': supported {sorted(families)}")
    return families[model_type]


def copy_processor_files(src: str | Path, dst: str | Path) -> None:
    """Copy tokenizer/processor files next to exported weights so the export loads on its own."""
    src, dst = Path(resolve_model(src)), Path(dst)
    for name in PROCESSOR_FILES:
        if (src / name).exists() and not (dst / name).exists():
            shutil.copy2(src / name, dst / name)
