"""The preprocessing spec an entry was built with: what frames, what size.

A spec is stored in full with every entry and hashed into its key, so a cache never hands a training run
frames made under other preprocessing. Defaults follow qwen-vl-utils 0.0.14 and are resolved at
construction (``None`` → the family's value), so two specs that select the same frames hash the same
whichever way they were written. The one default we do not read from the environment is qwen-vl-utils'
``MODEL_SEQ_LEN`` (it sets the default ``total_pixels``): we fix it at 128000, its default, so a key never
depends on an environment variable; pass ``total_pixels`` explicitly for another budget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

#: qwen-vl-utils constants (tokens are merged 2×2 patches; a "factor" is patch_size × 2)
SPATIAL_MERGE_SIZE = 2
FRAME_FACTOR = 2
DEFAULT_FPS = 2.0
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384
MODEL_SEQ_LEN = 128000
MAX_RATIO = 200


@dataclass(frozen=True)
class Family:
    """A model family's vision geometry."""

    name: str
    patch_size: int

    @property
    def factor(self) -> int:
        """Side length every resized frame is a multiple of (one merged token)."""
        return self.patch_size * SPATIAL_MERGE_SIZE


FAMILIES: dict[str, Family] = {
    "qwen2_5_vl": Family("qwen2_5_vl", patch_size=14),
    "qwen3_vl": Family("qwen3_vl", patch_size=16),
}


def get_family(name: str) -> Family:
    """Registry lookup; unknown names raise listing the known ones."""
    if name not in FAMILIES:
        raise ValueError(f"Unknown model family {name!r}. Known families: {', '.join(sorted(FAMILIES))}.")
    return FAMILIES[name]


class SpecMismatchError(ValueError):
    """An entry or cache was built with another spec than the one expected."""


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _opt_int(x: Any) -> int | None:
    if x is None:
        return None
    if float(x) != int(x):
        raise ValueError(f"expected an integer, got {x!r}")
    return int(x)


@dataclass(frozen=True)
class VideoSpec:
    """How frames are chosen and resized for one video (qwen-vl-utils ``fetch_video`` semantics)."""

    family: str = "qwen2_5_vl"
    fps: float | None = None
    """Frames sampled per second of video; default 2.0 unless num_frames is set (exclusive)."""
    num_frames: int | None = None
    """Fixed number of frames (qwen-vl-utils ``nframes``), rounded to an even number."""
    min_frames: int | None = None
    """Lower bound with fps sampling (default 4)."""
    max_frames: int | None = None
    """Upper bound with fps sampling (default 768)."""
    min_pixels: int | None = None
    """Per-frame pixel floor (default 128 tokens × factor²)."""
    max_pixels: int | None = None
    """Per-frame pixel cap; None derives it from total_pixels and the frame count, as qwen-vl-utils does."""
    total_pixels: float | None = None
    """Pixel budget over all frames (default 128000 × factor² × 0.9)."""
    video_start: float | None = None
    """Clip start in seconds (None: from the beginning)."""
    video_end: float | None = None
    """Clip end in seconds (None: to the end)."""

    def __post_init__(self) -> None:
        fam = get_family(self.family)
        if self.fps is not None and self.num_frames is not None:
            raise ValueError("fps and num_frames are exclusive: set one of them.")
        f2 = fam.factor**2
        fps = _opt_float(self.fps)
        if fps is None and self.num_frames is None:
            fps = DEFAULT_FPS
        values = {
            "fps": fps,
            "num_frames": _opt_int(self.num_frames),
            "min_frames": _opt_int(FPS_MIN_FRAMES if self.min_frames is None else self.min_frames),
            "max_frames": _opt_int(FPS_MAX_FRAMES if self.max_frames is None else self.max_frames),
            "min_pixels": _opt_int(VIDEO_MIN_TOKEN_NUM * f2 if self.min_pixels is None else self.min_pixels),
            "max_pixels": _opt_int(self.max_pixels),
            "total_pixels": float(
                MODEL_SEQ_LEN * f2 * 0.9 if self.total_pixels is None else self.total_pixels
            ),
            "video_start": _opt_float(self.video_start),
            "video_end": _opt_float(self.video_end),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}.")
        if self.num_frames is not None and self.num_frames < FRAME_FACTOR:
            raise ValueError(f"num_frames must be at least {FRAME_FACTOR}, got {self.num_frames}.")
        if self.max_pixels is not None and self.max_pixels < self.min_pixels:
            raise ValueError(f"max_pixels ({self.max_pixels}) is below min_pixels ({self.min_pixels}).")
        if self.video_start is not None and self.video_end is not None and self.video_end <= self.video_start:
            raise ValueError(f"video_end ({self.video_end}) must be after video_start ({self.video_start}).")

    kind = "video"

    @property
    def factor(self) -> int:
        return get_family(self.family).factor

    @property
    def patch_size(self) -> int:
        return get_family(self.family).patch_size

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def hash(self) -> str:
        return spec_hash(self)

    def to_qwen_ele(self) -> dict[str, Any]:
        """The qwen-vl-utils ``ele`` keys this spec stands for (for parity tests and documentation)."""
        ele: dict[str, Any] = {}
        if self.num_frames is not None:
            ele["nframes"] = self.num_frames
        else:
            ele.update(fps=self.fps, min_frames=self.min_frames, max_frames=self.max_frames)
        ele.update(min_pixels=self.min_pixels, total_pixels=self.total_pixels)
        for key in ("max_pixels", "video_start", "video_end"):
            if getattr(self, key) is not None:
                ele[key] = getattr(self, key)
        return ele


@dataclass(frozen=True)
class ImageSpec:
    """How an image is resized (qwen-vl-utils ``fetch_image`` semantics)."""

    family: str = "qwen2_5_vl"
    min_pixels: int | None = None
    """Pixel floor (default 4 tokens × factor²)."""
    max_pixels: int | None = None
    """Pixel cap (default 16384 tokens × factor²)."""

    def __post_init__(self) -> None:
        f2 = get_family(self.family).factor ** 2
        object.__setattr__(
            self,
            "min_pixels",
            _opt_int(IMAGE_MIN_TOKEN_NUM * f2 if self.min_pixels is None else self.min_pixels),
        )
        object.__setattr__(
            self,
            "max_pixels",
            _opt_int(IMAGE_MAX_TOKEN_NUM * f2 if self.max_pixels is None else self.max_pixels),
        )
        if self.max_pixels < self.min_pixels:
            raise ValueError(f"image max_pixels ({self.max_pixels}) is below min_pixels ({self.min_pixels}).")

    kind = "image"

    @property
    def factor(self) -> int:
        return get_family(self.family).factor

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def hash(self) -> str:
        return spec_hash(self)


Spec = VideoSpec | ImageSpec


def canonical_json(spec: Spec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))


def spec_hash(spec: Spec) -> str:
    """16 hex digits of sha256 over the canonical JSON of the resolved spec."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:16]


def spec_from_dict(data: dict[str, Any]) -> Spec:
    """Inverse of ``to_dict`` (the stored form)."""
    data = dict(data)
    kind = data.pop("kind", "video")
    cls = {"video": VideoSpec, "image": ImageSpec}.get(kind)
    if cls is None:
        raise ValueError(f"Unknown spec kind {kind!r}. Known kinds: image, video.")
    if cls is VideoSpec and data.get("fps") is not None and data.get("num_frames") is not None:
        raise ValueError("stored spec has both fps and num_frames")
    return cls(**data)


def diff(expected: Spec, stored: Spec) -> list[str]:
    """One line per differing field, ``field: expected X, stored Y`` (empty when equal)."""
    a, b = expected.to_dict(), stored.to_dict()
    return [
        f"{k}: expected {a.get(k)!r}, stored {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]
