"""One file → model frames + the metadata processors need (what a cache entry holds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from cache_builder.decode import decode_frames, get_decoder
from cache_builder.errors import MediaError
from cache_builder.sampling import image_size, plan_frames, video_size
from cache_builder.spec import ImageSpec, VideoSpec


def load_video(
    path: str | Path, spec: VideoSpec, timeout_s: float = 600.0, threads: int = 0, decoder: str = "libav"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Probe, choose frames, decode and resize → (uint8 (T, 3, H, W), meta); raises :class:`MediaError`."""
    info = get_decoder(decoder).probe(path, min(timeout_s, 120.0))
    plan = plan_frames(spec, info.total_frames, info.fps)
    size = video_size(spec, len(plan.indices), info.height, info.width)
    frames = decode_frames(
        path, info, plan.indices, size, timeout_s=timeout_s, threads=threads, decoder=decoder
    )
    meta = {
        "fps": plan.fps,
        "frames_indices": plan.indices,
        "total_num_frames": plan.total_num_frames,
        "sample_fps": plan.sample_fps,
        "duration": info.duration if info.duration is not None else info.total_frames / info.fps,
        "width": info.width,
        "height": info.height,
        "resized_height": size[0],
        "resized_width": size[1],
        "codec": info.codec,
        "video_backend": "ffmpeg",
    }
    return frames, meta


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparent pixels on white (what qwen-vl-utils feeds the processor)."""
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


def load_image(path: str | Path, spec: ImageSpec) -> tuple[np.ndarray, dict[str, Any]]:
    """Open and resize an image like qwen-vl-utils ``fetch_image`` → (uint8 (1, 3, H, W), meta)."""
    try:
        with Image.open(path) as im:
            im.load()
            rgb = _to_rgb(im)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as e:
        raise MediaError("not_image", f"PIL cannot read the image: {e}") from e
    height, width = rgb.height, rgb.width
    size = image_size(spec, height, width)
    resized = rgb.resize((size[1], size[0]), resample=Image.Resampling.BICUBIC)
    frames = np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1)[None].copy()
    meta = {"width": width, "height": height, "resized_height": size[0], "resized_width": size[1]}
    return frames, meta
