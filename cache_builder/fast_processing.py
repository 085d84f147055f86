"""Model-ready video tensors from cached uint8 frames, bit-identical to the HF Qwen-VL video processors.

With ``do_resize=False`` the HF video processors (Qwen2-VL/Qwen2.5-VL and Qwen3-VL) convert the frames to
float32, normalise them (``(x - mean·255) / (std·255)``, the fused rescale), reorder them into patches
with a float32 permute-copy and concatenate the videos: three full passes over a float32 tensor four
times the size of the frames. Frames from the cache are uint8, so the patch reordering can be done on the
uint8 data (a quarter of the bytes) and converted contiguously; the normalisation then runs in place with
the very same float32 operands and operation order, which keeps every value bit-identical (tested).

:func:`accelerate` installs this path on a loaded processor; inputs it does not cover (resizing, float
frames) go to the HF implementation unchanged.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import torch


def _column_stats(proc: Any, norm: dict[str, Any], per_channel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, columns) mean and std of the patch layout (columns are channel-major), with HF's fused values."""
    mean, std, _ = proc._fuse_mean_std_and_rescale_factor(
        do_normalize=True,
        image_mean=tuple(norm["image_mean"]),
        image_std=tuple(norm["image_std"]),
        do_rescale=True,
        rescale_factor=norm["rescale_factor"],
        device=torch.device("cpu"),
    )
    return mean.repeat_interleave(per_channel)[None], std.repeat_interleave(per_channel)[None]


def patchify_uint8(
    video: torch.Tensor,
    proc: Any,
    norm: dict[str, Any],
    patch_size: int,
    merge_size: int,
    temporal_patch_size: int,
) -> tuple[torch.Tensor, list[int]]:
    """uint8 (T, C, H, W) → float32 (grid_t·grid_h·grid_w, C·temporal·patch·patch) patches and the grid."""
    frames, channels, height, width = video.shape
    if pad := -frames % temporal_patch_size:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
        frames += pad
    grid_t, grid_h, grid_w = frames // temporal_patch_size, height // patch_size, width // patch_size
    view = video.view(
        grid_t,
        temporal_patch_size,
        channels,
        grid_h // merge_size,
        merge_size,
        patch_size,
        grid_w // merge_size,
        merge_size,
        patch_size,
    ).permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    per_channel = temporal_patch_size * patch_size * patch_size
    # reorder the uint8 data (numpy's strided copy is ~2x torch's for these 14-byte runs), then convert
    # contiguously: a quarter of the bytes of HF's float32 permute-copy
    reordered = torch.from_numpy(np.ascontiguousarray(view.numpy()))
    out = reordered.view(grid_t * grid_h * grid_w, channels * per_channel).to(torch.float32)
    mean, std = _column_stats(proc, norm, per_channel)
    out.sub_(mean).div_(std)
    return out, [grid_t, grid_h, grid_w]


def _fast_preprocess(self: Any, videos: list[torch.Tensor], do_resize: bool, **kwargs: Any) -> Any:
    exact = (
        not do_resize
        and kwargs.get("do_rescale")
        and kwargs.get("do_normalize")
        and all(v.dtype == torch.uint8 and v.dim() == 4 for v in videos)
    )
    if not exact:
        return type(self)._preprocess(self, videos, do_resize=do_resize, **kwargs)
    from transformers.feature_extraction_utils import BatchFeature

    patches, grids = [], []
    for video in videos:
        p, grid = patchify_uint8(
            video.cpu(),
            self,
            {k: kwargs[k] for k in ("image_mean", "image_std", "rescale_factor")},
            kwargs["patch_size"],
            kwargs["merge_size"],
            kwargs["temporal_patch_size"],
        )
        patches.append(p)
        grids.append(grid)
    data = {
        "pixel_values_videos": patches[0] if len(patches) == 1 else torch.cat(patches),
        "video_grid_thw": torch.tensor(grids),
    }
    return BatchFeature(data=data, tensor_type=kwargs.get("return_tensors"))


def accelerate(processor: Any) -> Any:
    """Give ``processor``'s video processor the exact uint8 fast path (in place); returns the processor."""
    video_processor = getattr(processor, "video_processor", None)
    if video_processor is not None and hasattr(video_processor, "patchify"):
        video_processor._preprocess = types.MethodType(_fast_preprocess, video_processor)
    return processor
