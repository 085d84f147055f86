"""Frame count, frame indices and resized size: the qwen-vl-utils 0.0.14 rules, reimplemented.

Every number here must equal what ``qwen_vl_utils.fetch_video`` (decord backend) computes, because the
cache stands in for it during training: same frame count, same indices (a float32 ``torch.linspace``
rounded half-to-even, as there), same resized size, same ``sample_fps``. Pure functions; the parity tests
compare them with the real package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cache_builder.errors import MediaError
from cache_builder.spec import FRAME_FACTOR, MAX_RATIO, VIDEO_MAX_TOKEN_NUM, ImageSpec, VideoSpec


def round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_resize(
    height: int, width: int, factor: int, min_pixels: float, max_pixels: float
) -> tuple[int, int]:
    """(height, width) → nearest (h, w), both multiples of ``factor``, pixel count in [min, max]."""
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) is below min_pixels ({min_pixels}).")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_RATIO:
        raise MediaError("aspect_ratio", f"aspect ratio {ratio:.1f}:1 exceeds {MAX_RATIO}:1")
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)
        w_bar = floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


@dataclass(frozen=True)
class FramePlan:
    """Which frames of a video to keep and the metadata the processors need."""

    indices: list[int]
    """Absolute frame indices (length T)."""
    total_num_frames: int
    """Frames inside the [video_start, video_end] range (all frames without a range)."""
    fps: float
    """The video's average frame rate."""
    sample_fps: float
    """T / total_num_frames × fps (the rate the kept frames represent)."""


def frame_range(spec: VideoSpec, total_frames: int, video_fps: float) -> tuple[int, int, int]:
    """(start, end, count) of the frames inside the spec's time range."""
    if video_fps <= 0:
        raise MediaError("bad_metadata", f"video fps must be positive, got {video_fps}")
    if total_frames <= 0:
        raise MediaError("too_short", "the video has no frames")
    if spec.video_start is None and spec.video_end is None:
        return 0, total_frames - 1, total_frames
    max_duration = total_frames / video_fps
    start = 0
    if spec.video_start is not None:
        start = math.ceil(max(0.0, min(spec.video_start, max_duration)) * video_fps)
    end = total_frames - 1
    if spec.video_end is not None:
        end = min(math.floor(max(0.0, min(spec.video_end, max_duration)) * video_fps), total_frames - 1)
    if start >= end:
        raise MediaError(
            "too_short",
            f"time range [{spec.video_start}, {spec.video_end}] s holds no frames ({max_duration:.2f} s)",
        )
    return start, end, end - start + 1


def num_frames(spec: VideoSpec, total_frames: int, video_fps: float) -> int:
    """How many frames the model sees (qwen-vl-utils ``smart_nframes``)."""
    if spec.num_frames is not None:
        n = round_by_factor(spec.num_frames, FRAME_FACTOR)
    else:
        min_frames = ceil_by_factor(spec.min_frames, FRAME_FACTOR)
        max_frames = floor_by_factor(spec.max_frames, FRAME_FACTOR)
        wanted = total_frames / video_fps * spec.fps
        n = floor_by_factor(min(min(max(wanted, min_frames), max_frames), total_frames), FRAME_FACTOR)
    if not FRAME_FACTOR <= n <= total_frames:
        raise MediaError(
            "too_short",
            f"{total_frames} frame(s) in range; the spec selects {n}, at least {FRAME_FACTOR} are needed",
        )
    return n


def plan_frames(spec: VideoSpec, total_frames: int, video_fps: float) -> FramePlan:
    """The frames to decode for one video (pure; raises :class:`MediaError`)."""
    start, end, count = frame_range(spec, total_frames, video_fps)
    n = num_frames(spec, count, video_fps)
    indices = torch.linspace(start, end, n).round().long().tolist()
    return FramePlan(
        indices=indices, total_num_frames=count, fps=video_fps, sample_fps=n / max(count, 1e-6) * video_fps
    )


def video_size(spec: VideoSpec, nframes: int, height: int, width: int) -> tuple[int, int]:
    """Resized (h, w) of every frame of a video with ``nframes`` kept frames."""
    factor = spec.factor
    frame_max = VIDEO_MAX_TOKEN_NUM * factor * factor
    max_pixels = max(min(frame_max, spec.total_pixels / nframes * FRAME_FACTOR), int(spec.min_pixels * 1.05))
    if spec.max_pixels is not None:
        max_pixels = min(spec.max_pixels, max_pixels)
    return smart_resize(height, width, factor, spec.min_pixels, max_pixels)


def image_size(spec: ImageSpec, height: int, width: int) -> tuple[int, int]:
    """Resized (h, w) of an image."""
    return smart_resize(height, width, spec.factor, spec.min_pixels, spec.max_pixels)


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (T, 3, H, W) → uint8 (T, 3, h, w) with the exact arithmetic of qwen-vl-utils' resize.

    qwen-vl-utils calls torchvision's tensor resize (bicubic, antialias): float32 interpolate, clamp to
    [0, 255], round half-to-even, back to uint8; an unchanged size returns the input untouched.
    """
    assert frames.dtype == torch.uint8 and frames.ndim == 4, (frames.dtype, frames.shape)
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    out = torch.empty((frames.shape[0], 3, *size), dtype=torch.uint8)
    for t in range(frames.shape[0]):
        out[t] = _resize_one(frames[t], size)
    return out


def resize_frame_hwc(frame: np.ndarray, size: tuple[int, int], out: np.ndarray) -> None:
    """One decoded frame, uint8 (H, W, 3), resized into ``out`` uint8 (3, h, w); same result as
    :func:`resize_frames`."""
    chw = np.ascontiguousarray(frame.transpose(2, 0, 1))
    if tuple(chw.shape[-2:]) == tuple(size):
        out[...] = chw
    else:
        out[...] = _resize_one(torch.from_numpy(chw), size).numpy()


def _resize_one(chw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (3, H, W) → uint8 (3, h, w).

    One frame at a time: a 720p frame's float32 copies stay below glibc's mmap threshold and reuse heap
    pages, while a batch of eight (88 MB) is mapped and page-faulted afresh at every step; that, and the
    in-place clamp and round, make this 2.8x faster than one call on a batch (measured), same bytes.
    """
    resized = torch.nn.functional.interpolate(
        chw.to(torch.float32, memory_format=torch.contiguous_format)[None],
        size=list(size),
        mode="bicubic",
        align_corners=False,
        antialias=True,
    )[0]
    return resized.clamp_(min=0, max=255).round_().to(torch.uint8)
