"""Frames for a record: read from the tensor cache, or decoded with the same spec, or cache-then-decode.

Whichever way, the frames and metadata are those the cache builder would store for the run's spec, so
``video_source=cache`` and ``video_source=decode`` feed the processor identical tensors. A cache built with
another spec is refused when the source opens (the error names each differing field).

Two checks make a sample fail (a :class:`MediaError` the prompt builder counts) instead of feeding the
model something it should not see: a record path that resolves outside the media root (unless
``allow_outside_root``), checked before the cache or the file is touched; and a cache entry whose bytes
fail their checksum (``corrupt_entry``), which ``prefer_cache`` decodes again instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cache_builder import open_cache
from cache_builder.errors import CorruptEntryError, MediaError
from cache_builder.media import load_image, load_video
from cache_builder.reader import CacheMiss, CacheReader
from cache_builder.records import MediaItem, media_of_record, resolve_inside
from cache_builder.spec import ImageSpec, VideoSpec
from vrl.data.config import DataConfig
from vrl.log import get_logger

logger = get_logger(__name__)

#: records carry the directory their relative media paths are under in this private key
ROOT_KEY = "_media_root"


@dataclass
class Media:
    kind: str
    """``video`` or ``image``."""
    frames: np.ndarray
    """uint8 (T, 3, H, W); T = 1 for images."""
    meta: dict[str, Any]


def specs_for(cfg: DataConfig, family: str) -> tuple[VideoSpec, ImageSpec]:
    """The cache specs this run's budgets stand for (what ``stage=cache`` must be built with)."""
    v = cfg.video
    video = VideoSpec(
        family=family,
        fps=v.fps,
        min_frames=v.min_frames,
        max_frames=v.max_frames,
        min_pixels=v.min_pixels,
        max_pixels=v.max_pixels,
        total_pixels=v.total_pixels,
    )
    image = ImageSpec(family=family, min_pixels=cfg.image.min_pixels, max_pixels=cfg.image.max_pixels)
    return video, image


class MediaSource:
    """``load(record) -> Media | None`` (None for text-only records), ``load_all(record) -> [Media]``; both
    raise :class:`MediaError`."""

    def __init__(
        self,
        mode: str,
        cache_dirs: list[str],
        video_spec: VideoSpec,
        image_spec: ImageSpec,
        allow_outside_root: bool = False,
    ) -> None:
        if mode in ("cache", "prefer_cache") and not cache_dirs and mode == "cache":
            raise ValueError(
                "data.video_source=cache needs data.cache_dir=[...] (or use prefer_cache/decode)"
            )
        self.mode = mode
        self.cache_dirs = [str(d) for d in cache_dirs]
        self.video_spec = video_spec
        self.image_spec = image_spec
        self.allow_outside_root = allow_outside_root
        """Read paths that resolve outside the record's media root (refused by default: ``outside_root``)."""
        self._readers: dict[str, CacheReader] = {}
        self.counts: Counter[str] = Counter()

    def _reader(self, root: str) -> CacheReader | None:
        if self.mode == "decode" or not self.cache_dirs:
            return None
        if root not in self._readers:
            existing = [d for d in self.cache_dirs if Path(d).is_dir()]
            if not existing:
                if self.mode == "cache":
                    raise ValueError(f"no cache folder exists among data.cache_dir={self.cache_dirs}")
                return None
            self._readers[root] = open_cache(existing, [self.video_spec, self.image_spec], video_root=root)
        return self._readers[root]

    def load(self, record: dict[str, Any]) -> Media | None:
        """The record's primary medium (``path``), or None for a text-only record."""
        items = media_of_record(record)
        return self._load_item(record, items[0]) if items else None

    def load_all(self, record: dict[str, Any]) -> list[Media]:
        """Every medium of the record in prompt order: the primary one, then its extra media (``image_path``,
        ``images``, ``videos``; Video-MMMU's question image)."""
        return [self._load_item(record, item) for item in media_of_record(record)]

    def _load_item(self, record: dict[str, Any], item: MediaItem) -> Media:
        root = record.get(ROOT_KEY, "")
        path = resolve_inside(item.path, root or None, self.allow_outside_root)
        reader = self._reader(root)
        if reader is not None:
            try:
                frames, meta = reader.get(item)
                self.counts["cache_hit"] += 1
                return Media(item.kind, frames, meta)
            except CacheMiss:
                self.counts["cache_miss"] += 1
                if self.mode == "cache":
                    raise MediaError(
                        "missing",
                        f"{item.path} is not in the cache {self.cache_dirs} under this run's spec: build it with "
                        "`python jobs/submit.py stage=cache ...` or set data.video_source=prefer_cache",
                    ) from None
            except CorruptEntryError as e:
                self.counts["cache_corrupt"] += 1
                if self.mode == "cache":
                    raise
                logger.warning("%s; decoding %s again instead", e, item.path)
        if not path.exists():
            raise MediaError("missing", f"media file not found: {path}")
        if item.kind == "image":
            frames, meta = load_image(path, self.image_spec)
        else:
            frames, meta = load_video(path, self.video_spec)
        self.counts["decoded"] += 1
        return Media(item.kind, frames, meta)


def attach_root(records: list[dict[str, Any]], root: str | Path) -> None:
    for r in records:
        r[ROOT_KEY] = str(root)
