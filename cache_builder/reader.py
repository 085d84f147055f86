"""Read cached frames: ``open_cache(dir_or_dirs, expected_spec).get(path_or_record)``.

Several caches can be named (another lab's read-only cache first, your own last): lookups search them in
order. A reader only ever returns entries built under its expected spec; opening with a spec no cache
holds raises :class:`SpecMismatchError` naming each differing field. Lookups do not hash the video: the
index maps the path written in the records (plus size and mtime) to the file's content hash; a path the
index does not know is hashed once per process (another lab's cache, built from other paths). Shard files
are immutable, opened read-only without file locks and reopened after a fork, so any number of reader
processes (DataLoader workers, ranks) can share a cache.

Every read checks the entry's checksum (key, metadata and frame bytes; xxh3-128, a few percent of the read
time) and raises :class:`~cache_builder.errors.CorruptEntryError` naming the entry and the shard when the
stored bytes changed: a damaged shard never hands out wrong frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter for reading)
import numpy as np

from cache_builder.index import load_index
from cache_builder.records import (
    MediaItem,
    content_hash,
    entry_key,
    kind_of,
    media_of_record,
    resolve,
    stat_key,
)
from cache_builder.spec import ImageSpec, Spec, SpecMismatchError, VideoSpec, diff, spec_from_dict
from cache_builder.store import read_entry
from vrl.log import get_logger

logger = get_logger(__name__)


class CacheMiss(KeyError):
    """The requested media has no entry under the reader's spec in any of its caches."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cache miss"


@dataclass
class _Index:
    """The parts of an ``index.json`` a reader needs, in compact form (readers live in every worker)."""

    specs: dict[str, dict[str, Any]]
    shards: list[str]
    entries: dict[str, tuple[int, str]]
    """key → (position in shards, spec hash)"""
    sources: dict[str, tuple[int, int, str]]
    """path as written in the records → (size, mtime_ns, content hash)"""

    @classmethod
    def from_json(cls, idx: dict[str, Any]) -> _Index:
        shard_ids: dict[str, int] = {}
        entries = {}
        for key, e in idx["entries"].items():
            entries[key] = (shard_ids.setdefault(e["shard"], len(shard_ids)), e["spec"])
        sources = {p: (s["size"], s["mtime_ns"], s["content"]) for p, s in idx["sources"].items()}
        return cls(idx.get("specs", {}), list(shard_ids), entries, sources)


@dataclass(frozen=True)
class Location:
    cache_dir: Path
    shard: Path
    key: str


def _as_specs(expected: Any) -> list[Spec]:
    if expected is None:
        return []
    if isinstance(expected, VideoSpec | ImageSpec):
        return [expected]
    if isinstance(expected, dict):
        return [spec_from_dict(expected)]
    if isinstance(expected, Iterable) and not isinstance(expected, str | bytes):
        return [s for e in expected for s in _as_specs(e)]
    raise TypeError(
        f"expected_spec must be a VideoSpec, ImageSpec, dict or a list of them, got {type(expected)}"
    )


class CacheReader:
    """Lookups over one or more caches under one spec per media kind (see module docstring)."""

    def __init__(
        self,
        dirs: Sequence[str | Path],
        expected_spec: Any = None,
        video_root: str | Path | None = None,
    ):
        self.dirs = [Path(d) for d in dirs]
        self.video_root = video_root
        self._indexes: list[tuple[Path, _Index]] = []
        for d in self.dirs:
            idx = load_index(d)
            if idx is None:
                logger.warning("cache %s has no index yet (not built or not finalized): skipped", d)
                continue
            self._indexes.append((d, _Index.from_json(idx)))
        self._spec_hash: dict[str, str | None] = {}
        self._ambiguous: dict[str, list[str]] = {}
        self._usable: dict[str, list[Path]] = {}
        expected = {s.kind: s for s in _as_specs(expected_spec)}
        for kind in ("video", "image"):
            self._choose_spec(kind, expected.get(kind))
        self._handles: dict[Path, h5py.File] = {}
        self._pid = os.getpid()
        self._hash_memo: dict[tuple[str, int, int], str] = {}

    def _stored_specs(self, kind: str) -> list[tuple[Path, str, Spec]]:
        """(cache, spec hash, spec) of every spec that has entries of ``kind`` (failure-only specs ignored)."""
        out = []
        for d, idx in self._indexes:
            with_entries = {spec for _, spec in idx.entries.values()}
            for h, s in idx.specs.items():
                if s.get("kind", "video") == kind and h in with_entries:
                    out.append((d, h, spec_from_dict(s)))
        return out

    def _choose_spec(self, kind: str, expected: Spec | None) -> None:
        stored = self._stored_specs(kind)
        if expected is not None:
            h = expected.hash()
            self._spec_hash[kind] = h
            self._usable[kind] = [d for d, sh, _ in stored if sh == h]
            if stored and not self._usable[kind]:
                lines = [f"{d} ({kind} spec {sh}): " + "; ".join(diff(expected, s)) for d, sh, s in stored]
                raise SpecMismatchError(
                    f"no cache holds {kind} entries built with the expected spec. Differences:\n  "
                    + "\n  ".join(lines)
                )
            for d, sh, s in stored:
                if sh != h and d not in self._usable[kind]:
                    logger.warning("cache %s skipped for %ss: %s", d, kind, "; ".join(diff(expected, s)))
            return
        hashes = sorted({sh for _, sh, _ in stored})
        self._spec_hash[kind] = hashes[0] if len(hashes) == 1 else None
        self._usable[kind] = [d for d, _, _ in stored]
        if len(hashes) > 1:
            self._ambiguous[kind] = hashes

    @property
    def video_spec(self) -> VideoSpec | None:
        return self._spec("video")  # type: ignore[return-value]

    @property
    def image_spec(self) -> ImageSpec | None:
        return self._spec("image")  # type: ignore[return-value]

    def _spec(self, kind: str) -> Spec | None:
        h = self._spec_hash.get(kind)
        for _, idx in self._indexes:
            if h in idx.specs:
                return spec_from_dict(idx.specs[h])
        return None

    # ---- lookups ---------------------------------------------------------------------------------------

    @staticmethod
    def _item(item: Any) -> MediaItem:
        if isinstance(item, MediaItem):
            return item
        if isinstance(item, dict):
            media = media_of_record(item)
            if not media:
                raise ValueError(f"record has no media path (keys: {', '.join(sorted(item))})")
            return media[0]
        if isinstance(item, str | Path):
            return MediaItem(kind_of(str(item)), str(item))
        raise TypeError(f"expected a path, a record dict or a MediaItem, got {type(item)}")

    def _content(self, item: MediaItem) -> str | None:
        local = resolve(item.path, self.video_root)
        st = stat_key(local) if local.is_file() else None
        recorded = [idx.sources[item.path] for _, idx in self._indexes if item.path in idx.sources]
        if st is None:
            return recorded[0][2] if recorded else None
        for size, mtime_ns, content in recorded:
            if (size, mtime_ns) == st:
                return content
        memo = (str(local.resolve()), *st)
        if memo not in self._hash_memo:
            self._hash_memo[memo] = content_hash(local)
        return self._hash_memo[memo]

    def find(self, item: Any) -> Location | None:
        """Where the entry of ``item`` (path, record or MediaItem) is, or None."""
        media = self._item(item)
        if media.kind in self._ambiguous:
            raise ValueError(
                f"the cache holds {media.kind} entries under several specs ({', '.join(self._ambiguous[media.kind])}): "
                "open it with expected_spec=... to choose one"
            )
        h = self._spec_hash.get(media.kind)
        if h is None:
            return None
        content = self._content(media)
        if content is None:
            return None
        key = entry_key(content, h)
        for d, idx in self._indexes:
            if d in self._usable[media.kind] and key in idx.entries:
                return Location(d, d / idx.shards[idx.entries[key][0]], key)
        return None

    def __contains__(self, item: Any) -> bool:
        return self.find(item) is not None

    def get(self, item: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """(frames uint8 (T, 3, H, W), meta) of a path, record or MediaItem; raises :class:`CacheMiss`, or
        :class:`~cache_builder.errors.CorruptEntryError` when the stored entry fails its checksum.

        meta holds ``fps``, ``frames_indices``, ``total_num_frames``, ``sample_fps`` (videos), ``duration``,
        the original and resized sizes.
        """
        loc = self.find(item)
        if loc is None:
            media = self._item(item)
            raise CacheMiss(
                f"{media.kind} {media.path!r} is not in {[str(d) for d in self.dirs]} under the expected spec"
            )
        return self.read(loc)

    def get_all(self, record: dict[str, Any]) -> list[tuple[np.ndarray, dict[str, Any]]]:
        """Every media of a record (primary first)."""
        return [self.get(m) for m in media_of_record(record)]

    def read(self, loc: Location) -> tuple[np.ndarray, dict[str, Any]]:
        """The entry at ``loc``, checked against its checksum (see :func:`cache_builder.store.read_entry`)."""
        f = self._handle(loc.shard)
        frames, meta = read_entry(f, loc.key)
        stored_spec = f["entries"][loc.key].attrs["spec_hash"]
        if not loc.key.endswith("-" + stored_spec):
            raise SpecMismatchError(f"entry {loc.key} in {loc.shard} was stored with spec {stored_spec}")
        return frames, meta

    def _handle(self, shard: Path) -> h5py.File:
        if os.getpid() != self._pid:  # forked: never share HDF5 handles across processes
            self._handles = {}
            self._pid = os.getpid()
        f = self._handles.get(shard)
        if f is None:
            f = h5py.File(shard, "r", locking=False)
            self._handles[shard] = f
        return f

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (DataLoader workers, spawn): open HDF5 handles stay behind and are reopened lazily."""
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def keys(self) -> list[str]:
        """Keys readable under the reader's specs, over all caches."""
        hashes = {h for h in self._spec_hash.values() if h}
        out: dict[str, None] = {}
        for _, idx in self._indexes:
            for key, (_, spec) in idx.entries.items():
                if spec in hashes:
                    out.setdefault(key, None)
        return list(out)

    def close(self) -> None:
        if os.getpid() == self._pid:
            for f in self._handles.values():
                f.close()
        self._handles = {}

    def __enter__(self) -> CacheReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_cache(
    dir_or_dirs: str | Path | Sequence[str | Path],
    expected_spec: Any = None,
    video_root: str | Path | None = None,
) -> CacheReader:
    """Open one cache folder or several (searched in order) for reading; see :class:`CacheReader`."""
    dirs = [dir_or_dirs] if isinstance(dir_or_dirs, str | Path) else list(dir_or_dirs)
    if not dirs:
        raise ValueError("open_cache needs at least one cache folder")
    missing = [str(d) for d in dirs if not Path(d).is_dir()]
    if len(missing) == len(dirs):
        raise FileNotFoundError(f"no cache folder exists: {', '.join(missing)}")
    return CacheReader(dirs, expected_spec=expected_spec, video_root=video_root)
