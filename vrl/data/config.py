"""``DataConfig``: training/validation records, media budgets, where frames come from, prompt style."""

from __future__ import annotations

from dataclasses import dataclass, field

from vrl.config import choice


@dataclass
class ImageBudget:
    min_pixels: int = 4 * 28 * 28
    """Image pixel floor (smart_resize min_pixels)."""
    max_pixels: int = 256 * 28 * 28
    """Image pixel cap (smart_resize max_pixels): images and video frames have separate budgets."""

    def check(self, key: str) -> None:
        """Raise naming ``key`` (where the group sits: ``data.image``, ``image``) on an impossible budget."""
        if self.min_pixels < 1:
            raise ValueError(f"{key}.min_pixels must be >= 1, got {self.min_pixels}")
        if self.max_pixels < self.min_pixels:
            raise ValueError(
                f"{key}.min_pixels={self.min_pixels} is above {key}.max_pixels={self.max_pixels}"
            )


@dataclass
class VideoBudget:
    fps: float = 2.0
    """Frames sampled per second of video."""
    min_frames: int = 4
    """Lower bound on sampled frames."""
    max_frames: int = 32
    """Upper bound on sampled frames."""
    min_pixels: int = 16 * 28 * 28
    """Per-frame pixel floor."""
    max_pixels: int = 256 * 28 * 28
    """Per-frame pixel cap."""
    total_pixels: int = 4096 * 28 * 28
    """Pixel budget over all frames of a video."""

    def check(self, key: str) -> None:
        """Raise naming ``key`` (where the group sits: ``data.video``, ``video``) on an impossible budget."""
        if self.fps <= 0:
            raise ValueError(f"{key}.fps must be > 0, got {self.fps}")
        if self.min_frames < 1:
            raise ValueError(f"{key}.min_frames must be >= 1, got {self.min_frames}")
        if self.max_frames < self.min_frames:
            raise ValueError(
                f"{key}.min_frames={self.min_frames} is above {key}.max_frames={self.max_frames}"
            )
        if self.min_pixels < 1:
            raise ValueError(f"{key}.min_pixels must be >= 1, got {self.min_pixels}")
        if self.max_pixels < self.min_pixels:
            raise ValueError(
                f"{key}.min_pixels={self.min_pixels} is above {key}.max_pixels={self.max_pixels}"
            )
        if self.total_pixels < self.min_pixels:
            raise ValueError(
                f"{key}.total_pixels={self.total_pixels} is below {key}.min_pixels={self.min_pixels}"
            )


@dataclass
class DataConfig:
    train_files: list[str] = field(default_factory=list)
    """Training records (unified JSON/JSONL). Empty: the toy suite's train split (generated on demand)."""
    val_files: list[str] = field(default_factory=list)
    """Validation records. Empty with empty train_files: the toy suite's val split; otherwise no validation."""
    media_root: str = ""
    """Directory the records' relative `path`s are under (video_root). Empty: each file's own directory."""
    allow_outside_root: bool = False
    """Read record paths that resolve outside the media root (`../`, absolute, symlinks to elsewhere); by
    default such a sample is refused and counted as failed (`media_outside_root`)."""
    video_source: str = choice("prefer_cache", ["cache", "decode", "prefer_cache"])
    """Frames from the tensor cache (cache), decoded on the fly (decode), or the cache with decoding as fallback."""
    cache_dir: list[str] = field(default_factory=list)
    """Tensor caches searched in order (another lab's read-only cache first). Empty with the toy suite: built on demand."""
    image: ImageBudget = field(default_factory=ImageBudget)
    """Pixel budget of images."""
    video: VideoBudget = field(default_factory=VideoBudget)
    """Frame sampling and pixel budget of videos."""
    uint8_video_patches: bool = True
    """Video patches stay uint8 until the model's vision tower normalises them (on the accelerator): a
    quarter of the host memory and host-to-device bytes, no host time for the float conversion, and the
    same values as the HF processor's float32 output. false: normalise on the host."""
    prompt_style: str = choice("think", ["think", "direct"])
    """think: reason in <think></think> then <answer></answer>; direct: only <answer></answer>."""
    max_prompt_length: int = 4096
    """Prompts longer than this many tokens are skipped (counted and logged)."""
    problem_types: list[str] = field(default_factory=list)
    """Keep only these problem types (canonical names or aliases); empty keeps all."""
    shuffle: bool = True
    """Shuffle the training records each epoch (seeded)."""
    max_train_records: int = 0
    """Use at most this many training records (0: all)."""
    max_val_records: int = 0
    """Use at most this many validation records (0: all)."""

    def validate(self) -> None:
        self.video.check("data.video")
        self.image.check("data.image")
        if self.max_prompt_length < 1:
            raise ValueError(f"data.max_prompt_length must be >= 1, got {self.max_prompt_length}")
        if self.max_train_records < 0 or self.max_val_records < 0:
            raise ValueError("data.max_train_records and data.max_val_records must be >= 0 (0: all)")
