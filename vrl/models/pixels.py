"""uint8 video patches into the model: the HF normalisation becomes the model's first operation.

The training data path hands video patches over as uint8 (``cache_builder.fast_processing.accelerate``
with ``uint8_patches=True``): a quarter of the bytes of float32 in host memory and host-to-device copies,
and no host CPU time for the conversion. :func:`accept_uint8_patches` makes a Qwen-VL model (its
``get_video_features``; :func:`accept_uint8_patches_tower` a bare vision tower) turn uint8 patches into
exactly the float32 values the HF video processor would have produced (same operands, same operation
order), on whatever device the patches are; float inputs (images, videos normalised on the host) pass
through untouched. Every model the project loads gets the hook (``load_hf_model`` and the Megatron vision
stage), so a uint8 batch never reaches a tower that would cast it without normalising.
"""

from __future__ import annotations

import inspect
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn


class UInt8PatchNormalizer:
    """uint8 (N, D) pixel patches → the HF video processor's float32 values; anything else unchanged.

    The statistics come from the checkpoint's video processor config, read on the first uint8 input.
    """

    def __init__(self, model_path: str | Path) -> None:
        self.model_path = Path(model_path)
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._stats is None:
            from transformers import AutoVideoProcessor

            from cache_builder.fast_processing import patch_statistics

            self._stats = patch_statistics(AutoVideoProcessor.from_pretrained(str(self.model_path)))
        return self._stats

    def __call__(self, pixels: Any) -> Any:
        if not (isinstance(pixels, torch.Tensor) and pixels.dtype == torch.uint8):
            return pixels
        from cache_builder.fast_processing import normalize_patches

        mean, std = self.stats()
        if pixels.dim() != 2 or pixels.shape[1] != mean.shape[1]:
            raise ValueError(
                f"uint8 pixel patches of shape {tuple(pixels.shape)} do not match the video processor's "
                f"patch size ({mean.shape[1]} values per patch)"
            )
        return normalize_patches(pixels, mean, std)


def accept_uint8_patches(model: nn.Module, model_path: str | Path) -> nn.Module:
    """Let a Qwen-VL ``*ForConditionalGeneration`` take uint8 ``pixel_values_videos`` (in place).

    Overrides its ``*Model``'s ``get_video_features`` (same signature), the one place every path goes
    through before casting the patches to the tower's dtype: the model's forward and ``generate``, which
    encodes the media itself before the first forward."""
    inner = model.model
    original = type(inner).get_video_features

    def get_video_features(self: nn.Module, pixel_values_videos: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, self.vrl_uint8_patches(pixel_values_videos), *args, **kwargs)

    get_video_features.__signature__ = inspect.signature(original)  # generate picks its kwargs by name
    inner.vrl_uint8_patches = UInt8PatchNormalizer(model_path)
    inner.get_video_features = types.MethodType(get_video_features, inner)
    return model


def accept_uint8_patches_tower(vision: nn.Module, model_path: str | Path) -> nn.Module:
    """Let a bare Qwen-VL vision tower take uint8 patches as its first argument (a forward pre-hook)."""
    normalizer = UInt8PatchNormalizer(model_path)

    def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict]:
        return (normalizer(args[0]), *args[1:]) if args else args, kwargs

    vision.register_forward_pre_hook(hook, with_kwargs=True)
    return vision
