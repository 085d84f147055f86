"""Configuration of the cache build (stage ``cache`` and ``python -m cache_builder build``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cache_builder.spec import FAMILIES, ImageSpec, VideoSpec
from vrl.config import choice
from vrl.launch.config import MAX_ARRAY_TASKS, LaunchConfig
from vrl.log import get_logger

logger = get_logger(__name__)


@dataclass
class CacheConfig(LaunchConfig):
    input: str = ""
    """Records file (JSON list or JSONL, EasyVideoR1 / Video-R1 format); required for build."""
    video_root: str = ""
    """Folder the records' relative ``path`` values are relative to (empty: the working directory)."""
    allow_outside_root: bool = False
    """Build record paths that resolve outside video_root (``../``, absolute, symlinks to elsewhere); by
    default they are refused and recorded in failures.jsonl as ``outside_root``. No effect without video_root."""
    out: str = ""
    """Cache folder written by the build (default: the last of cache_dir)."""
    cache_dir: list[str] = field(default_factory=list)
    """Caches to use, searched in order; entries already in any of them are not rebuilt; only the last is written."""
    family: str = choice("qwen2_5_vl", sorted(FAMILIES))
    """Model family: sets patch size (14 / 16), resize factor (28 / 32) and pixel defaults."""
    fps: float | None = None
    """Frames sampled per second (default 2.0 unless num_frames is set)."""
    num_frames: int | None = None
    """Fixed frame count per video (exclusive with fps)."""
    min_frames: int | None = None
    """Minimum frames with fps sampling (default 4)."""
    max_frames: int | None = None
    """Maximum frames with fps sampling (default 768)."""
    min_pixels: int | None = None
    """Per-frame pixel floor (default 128 × factor²)."""
    max_pixels: int | None = None
    """Per-frame pixel cap (default: derived from total_pixels, at most 768 × factor²)."""
    total_pixels: float | None = None
    """Pixel budget over all frames of a video (default 128000 × factor² × 0.9)."""
    video_start: float | None = None
    """Clip start in seconds."""
    video_end: float | None = None
    """Clip end in seconds."""
    image_min_pixels: int | None = None
    """Image pixel floor (default 4 × factor²)."""
    image_max_pixels: int | None = None
    """Image pixel cap (default 16384 × factor²)."""
    num_shards: int = 1
    """Shard files (= array tasks; with launcher=mpi the number of ranks decides)."""
    launcher: str = choice("local", ["local", "array", "mpi"])
    """local: all shards in this process; array: one shard per array task (SLURM_ARRAY_TASK_ID); mpi: one per rank."""
    num_workers: int = 1
    """launcher=local: shards built in parallel processes."""
    parallel_videos: int = 0
    """Videos a worker decodes at once, each with its own decoder process (0: the worker's share of the
    cores plus one, so one worker fills the machine)."""
    compression: str = choice("zstd", ["none", "zstd"])
    """Lossless compression of frame chunks (zstd through hdf5plugin)."""
    compression_level: int = 1
    """zstd level (1 measured best speed/size trade-off, see FORMAT.md)."""
    chunks: str = choice("video", ["video", "frame"])
    """HDF5 chunks of the frames: video (one per entry, the format's layout) or frame (one per frame:
    whole videos read ~2x faster, single frames without the rest; see FORMAT.md)."""
    decoder: str = choice("libav", ["libav", "ffmpeg"])
    """libav: PyAV in a child process, skips unselected non-reference frames (~1.5x less decoding on
    H.264 with B-frames); ffmpeg: the ffmpeg CLI with a select filter. Same frames (see decode.py)."""
    timeout_s: float = 600.0
    """Per-video decode timeout in seconds: a hung decoder is killed and the video recorded as a failure."""
    decode_threads: int = 0
    """Decoder threads per video (0: one for libav, which leaves a core to the resize; ffmpeg decides)."""
    progress: bool = True
    """Show a progress bar per worker (stderr)."""

    def validate(self) -> None:
        # Absolute paths, fixed where the command was typed: array tasks and MPI ranks may start elsewhere.
        for name in ("input", "video_root", "out"):
            if getattr(self, name):
                setattr(self, name, os.path.abspath(getattr(self, name)))
        self.cache_dir = [os.path.abspath(d) for d in self.cache_dir]
        if self.allow_outside_root and not self.video_root:
            logger.warning("allow_outside_root=true has no effect without video_root")
        self.video_spec()
        self.image_spec()
        if self.cache_dir and self.out and self.out != self.cache_dir[-1]:
            raise ValueError(
                f"out ({self.out}) must be the last of cache_dir ({self.cache_dir}): builds write only there."
            )
        if not 1 <= self.num_shards <= MAX_ARRAY_TASKS:
            raise ValueError(f"num_shards must be in [1, {MAX_ARRAY_TASKS}], got {self.num_shards}.")
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}.")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}.")

    def video_spec(self) -> VideoSpec:
        return VideoSpec(
            family=self.family,
            fps=self.fps,
            num_frames=self.num_frames,
            min_frames=self.min_frames,
            max_frames=self.max_frames,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            total_pixels=self.total_pixels,
            video_start=self.video_start,
            video_end=self.video_end,
        )

    def image_spec(self) -> ImageSpec:
        return ImageSpec(
            family=self.family, min_pixels=self.image_min_pixels, max_pixels=self.image_max_pixels
        )

    def out_dir(self) -> str:
        """The one cache folder this build writes."""
        out = self.out or (self.cache_dir[-1] if self.cache_dir else "")
        if not out:
            raise ValueError("set out=<cache folder> (or cache_dir=[..., <cache folder>]).")
        return out

    def reuse_dirs(self) -> list[str]:
        """Read-only caches consulted before building an entry."""
        return [d for d in self.cache_dir if d != self.out_dir()]
