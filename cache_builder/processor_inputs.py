"""Cached frames + meta → keyword arguments for a Hugging Face Qwen-VL processor.

The frames are already sampled and resized exactly as qwen-vl-utils would, so the processor must neither
sample (``do_sample_frames=False``) nor resize (``do_resize=False``) again. Both families read the
timing from ``video_metadata``: Qwen3-VL writes per-frame timestamps into the prompt from ``fps`` and
``frames_indices``; Qwen2.5-VL derives ``second_per_grid_ts`` from the sampled fps
(``len(frames_indices) / total_num_frames × fps``, the same number as qwen-vl-utils' ``sample_fps``).
With these inputs ``input_ids`` and ``pixel_values_videos`` equal the on-the-fly qwen-vl-utils path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

#: the metadata keys qwen-vl-utils hands to the processor
METADATA_KEYS = ("fps", "frames_indices", "total_num_frames")


def video_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The processor's ``video_metadata`` entry for one cached video."""
    missing = [k for k in METADATA_KEYS if k not in meta]
    if missing:
        raise ValueError(f"cached meta lacks {missing}: not a video entry?")
    return {
        "fps": float(meta["fps"]),
        "frames_indices": list(meta["frames_indices"]),
        "total_num_frames": int(meta["total_num_frames"]),
    }


def video_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, 3, H, W) array → uint8 tensor (no copy).

    qwen-vl-utils hands the processor float32 frames holding the same integers; the processor's rescale
    and normalise give bit-identical ``pixel_values_videos`` from uint8 (tested), at a quarter of the memory.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected uint8 frames (T, 3, H, W), got {frames.dtype} {frames.shape}")
    return torch.from_numpy(np.ascontiguousarray(frames))


def image_input(frames: np.ndarray) -> Image.Image:
    """A cached image entry (uint8 (1, 3, H, W)) → the PIL image qwen-vl-utils would give the processor."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[:2] != (1, 3):
        raise ValueError(f"expected one uint8 image (1, 3, H, W), got {frames.dtype} {frames.shape}")
    return Image.fromarray(np.ascontiguousarray(frames[0].transpose(1, 2, 0)))


def processor_kwargs(
    videos: Sequence[tuple[np.ndarray, dict[str, Any]]] = (),
    images: Sequence[tuple[np.ndarray, dict[str, Any]]] = (),
) -> dict[str, Any]:
    """Keyword arguments for ``processor(text=..., **processor_kwargs(videos, images), return_tensors="pt")``.

    ``videos`` / ``images`` are ``(frames, meta)`` pairs as returned by ``CacheReader.get``, in prompt order.
    """
    kwargs: dict[str, Any] = {"do_resize": False}
    if videos:
        kwargs["videos"] = [video_tensor(f) for f, _ in videos]
        kwargs["video_metadata"] = [video_metadata(m) for _, m in videos]
        kwargs["do_sample_frames"] = False
    if images:
        kwargs["images"] = [image_input(f) for f, _ in images]
    return kwargs


def vllm_video_input(frames: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """A cached video as vLLM's multimodal video item: ``(uint8 (T, H, W, 3), metadata)``.

    vLLM wants channels-last frames with their metadata in a tuple (bare frames are refused) and must not
    sample again (``do_sample_frames=False``); use as ``{"prompt": ..., "multi_modal_data": {"video":
    [vllm_video_input(frames, meta)]}}``.
    """
    video_tensor(frames)  # validates dtype and layout
    md = video_metadata(meta)
    md["duration"] = float(meta.get("duration", md["total_num_frames"] / md["fps"]))
    md["do_sample_frames"] = False
    return np.ascontiguousarray(frames.transpose(0, 2, 3, 1)), md
