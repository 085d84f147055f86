"""Load a policy and its processor from a registered tiny-model name or a Hugging Face directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from vrl.config import UserError
from vrl.models.tiny import resolve_model, tiny_names

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
    """``qwen2_5_vl`` or ``qwen3_vl`` from the checkpoint's config (the cache spec family names).

    A model folder without a readable ``config.json``, or with one transformers cannot read or of another
    model type, raises :class:`~vrl.config.UserError` naming the file."""
    from transformers import AutoConfig

    try:
        directory = resolve_model(path)
    except ValueError as e:  # neither a registered tiny model nor a model folder
        raise UserError(str(e)) from None
    config_file = directory / "config.json"
    try:
        json.loads(config_file.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{config_file}: not a readable JSON model config ({e})") from None
    try:
        model_type = AutoConfig.from_pretrained(str(directory)).model_type
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:  # a config of the user's
        raise UserError(f"{config_file}: transformers cannot read it ({type(e).__name__}: {e})") from None
    families = {"qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl"}
    if model_type not in families:
        raise UserError(
            f"{config_file}: unsupported model type '{model_type}'; supported: {', '.join(sorted(families))}"
        )
    return families[model_type]


def check_model(name_or_path: str, key: str = "model") -> None:
    """Before submission: ``name_or_path`` is a registered tiny model (built by the job on first use) or
    a model folder of a supported family; raises :class:`~vrl.config.UserError` naming ``key``."""
    if name_or_path in tiny_names():
        return
    if not Path(name_or_path).expanduser().is_dir():
        raise UserError(
            f"{key}={name_or_path} is neither a registered tiny model nor a model folder",
            hint=f"registered tiny models: {', '.join(tiny_names())}; or a Hugging Face model folder",
        )
    model_family(name_or_path)


def copy_processor_files(src: str | Path, dst: str | Path) -> None:
    """Copy tokenizer/processor files next to exported weights so the export loads on its own."""
    src, dst = Path(resolve_model(src)), Path(dst)
    for name in PROCESSOR_FILES:
        if (src / name).exists() and not (dst / name).exists():
            shutil.copy2(src / name, dst / name)
