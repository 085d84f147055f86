"""HDF5 storage of entries: staged per-entry files, assembled into one immutable shard file per task.

Crash safety comes from never modifying a file a reader can see. Each finished entry is first written to
its own small HDF5 file in ``staging/`` (temp name, fsync, rename), so a ``kill -9`` loses at most the entry
being decoded and a rerun skips every staged one. When a task has processed its items it assembles the
staged entries (plus the entries of an earlier version of the same shard) into a new shard file, again
under a temp name, fsync, rename, and only then deletes the staging files. A shard file is therefore
always complete; the index (written last, see :mod:`cache_builder.index`) decides what readers see.
Layout and attributes are documented in FORMAT.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from cache_builder.errors import CorruptEntryError

try:
    import xxhash
except ImportError:  # in the lock file (vLLM needs it); without it new entries carry a sha256 instead
    xxhash = None

FORMAT_VERSION = 1
FORMAT_NAME = "vrl-video-cache"
COMPRESSIONS = ("none", "zstd")


@dataclass
class Entry:
    """One cached video or image, ready to be written."""

    key: str
    kind: str
    frames: np.ndarray
    """uint8 (T, 3, H, W); T = 1 for images."""
    meta: dict[str, Any]
    spec: dict[str, Any]
    spec_hash: str
    source: dict[str, Any]
    """path (as given), size, mtime_ns, content (sha256 of the file)."""

    def summary(self, nbytes_stored: int) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "spec": self.spec_hash,
            "content": self.source["content"],
            "path": self.source["path"],
            "shape": list(self.frames.shape),
            "nbytes": int(self.frames.nbytes),
            "nbytes_stored": int(nbytes_stored),
        }


def frames_digest(frames: np.ndarray) -> str:
    """sha256 of the C-order frame bytes (checked by ``verify``)."""
    return hashlib.sha256(np.ascontiguousarray(frames).data).hexdigest()


#: algorithm name → streaming hash of the checksum every read verifies
CHECKSUMS: dict[str, Any] = {"sha256": hashlib.sha256}
if xxhash is not None:
    CHECKSUMS["xxh3_128"] = xxhash.xxh3_128
#: what new entries are checksummed with: xxh3-128 hashes ~13 GB/s on one core, sha256 ~1.4 GB/s, so a
#: read (zstd decompression, ~1 GB/s) pays a few percent instead of doubling
CHECKSUM = "xxh3_128" if xxhash is not None else "sha256"


def entry_checksum(key: str, meta_json: str, frames: np.ndarray, algorithm: str = CHECKSUM) -> str:
    """``<algorithm>:<hex digest>`` of the entry's key, metadata JSON and C-order frame bytes: frames moved to
    another key or metadata changed fail it as much as a flipped frame byte."""
    h = CHECKSUMS[algorithm]()
    h.update(key.encode() + b"\0" + meta_json.encode() + b"\0")
    h.update(np.ascontiguousarray(frames).data)
    return f"{algorithm}:{h.hexdigest()}"


def checksum_problem(key: str, attrs: Any, meta_json: str, frames: np.ndarray) -> str | None:
    """Why entry ``key`` (its HDF5 attributes, stored metadata JSON and frames) fails its checksum, or None.

    Entries written before the ``checksum`` attribute existed, or with a hash this environment lacks
    (xxhash not installed), are checked against ``frames_sha256`` (the frames only, ~10x slower).
    """
    stored = attrs.get("checksum")
    algorithm = str(stored).partition(":")[0] if stored is not None else None
    if algorithm in CHECKSUMS:
        if entry_checksum(key, meta_json, frames, algorithm) != stored:
            return f"{algorithm} checksum mismatch (frames or metadata changed since the entry was written)"
        return None
    if frames_digest(frames) != attrs["frames_sha256"]:
        return "frame data sha256 checksum mismatch"
    return None


def compression_kwargs(compression: str, level: int) -> dict[str, Any]:
    """h5py dataset keywords for a compression name (``none`` or ``zstd`` through hdf5plugin)."""
    if compression == "none":
        return {}
    if compression == "zstd":
        return dict(hdf5plugin.Zstd(clevel=level))
    raise ValueError(f"Unknown compression {compression!r}. Known: {', '.join(COMPRESSIONS)}.")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace(tmp: Path, final: Path) -> None:
    """fsync ``tmp``, rename it over ``final`` and fsync the folder: all or nothing after a crash."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def tmp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


#: HDF5 chunk layouts of the frames: ``video`` one chunk per entry (the format's default), ``frame`` one per frame
CHUNKINGS = ("video", "frame")


def chunk_shape(shape: tuple[int, ...], chunking: str) -> tuple[int, ...]:
    """The frames' chunk shape. ``frame`` reads a whole video ~2x faster than ``video`` (each 1-2 MB chunk
    decompresses inside the CPU caches; measured in FORMAT.md) and lets a reader take a few frames
    without decompressing the rest."""
    if chunking not in CHUNKINGS:
        raise ValueError(f"Unknown chunking {chunking!r}. Known: {', '.join(CHUNKINGS)}.")
    return tuple(shape) if chunking == "video" else (1, *shape[1:])


def _write_entry(group: h5py.Group, entry: Entry, compression: str, level: int, chunking: str) -> int:
    g = group.create_group(entry.key)
    ds = g.create_dataset(
        "frames",
        data=entry.frames,
        chunks=chunk_shape(entry.frames.shape, chunking),
        **compression_kwargs(compression, level),
    )
    meta_json = json.dumps(entry.meta, sort_keys=True)
    g.attrs["kind"] = entry.kind
    g.attrs["format_version"] = FORMAT_VERSION
    g.attrs["spec_hash"] = entry.spec_hash
    g.attrs["spec"] = json.dumps(entry.spec, sort_keys=True)
    g.attrs["meta"] = meta_json
    g.attrs["source"] = json.dumps(entry.source, sort_keys=True)
    g.attrs["frames_sha256"] = frames_digest(entry.frames)
    g.attrs["checksum"] = entry_checksum(entry.key, meta_json, entry.frames)
    return int(ds.id.get_storage_size())


def write_staged(
    staging_dir: Path, entry: Entry, compression: str, level: int, chunking: str = "video"
) -> int:
    """Write ``entry`` as its own file ``<staging_dir>/<key>.h5`` atomically; return stored bytes."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    final = staging_dir / f"{entry.key}.h5"
    tmp = tmp_name(final)
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        stored = _write_entry(f.require_group("entries"), entry, compression, level, chunking)
        f.attrs["summary"] = json.dumps(entry.summary(stored))
    atomic_replace(tmp, final)
    return stored


def staged_entries(staging_dir: Path) -> dict[str, dict[str, Any]]:
    """key → summary of the complete staged files (temp files of a killed run are ignored)."""
    out: dict[str, dict[str, Any]] = {}
    if not staging_dir.is_dir():
        return out
    for path in sorted(staging_dir.glob("*.h5")):
        try:
            with h5py.File(path, "r", locking=False) as f:
                out[path.stem] = json.loads(f.attrs["summary"])
        except OSError:  # only possible if the disk itself lost data: redo the entry
            path.unlink(missing_ok=True)
    return out


def read_catalog(shard: Path) -> dict[str, Any]:
    """A shard's catalog: ``{"entries": {key: summary}, "sources": {path: {...}}, "specs": {hash: spec}}``."""
    with h5py.File(shard, "r", locking=False) as f:
        return json.loads(f["catalog"][()])


def assemble_shard(
    final: Path, staging_dir: Path, sources: dict[str, dict[str, Any]], extra_meta: dict[str, Any]
) -> dict[str, Any]:
    """Merge an existing ``final`` shard and the staged entries into a new ``final``; return its catalog."""
    staged = sorted(staging_dir.glob("*.h5")) if staging_dir.is_dir() else []
    old = read_catalog(final) if final.exists() else {"entries": {}, "sources": {}, "specs": {}}
    merged_sources = {**old["sources"], **sources}
    if final.exists() and not staged and merged_sources == old["sources"]:
        return old
    tmp = tmp_name(final)
    catalog = {"entries": dict(old["entries"]), "sources": merged_sources, "specs": dict(old["specs"])}
    with h5py.File(tmp, "w") as dst:
        dst.attrs["format"] = FORMAT_NAME
        dst.attrs["format_version"] = FORMAT_VERSION
        for key, value in extra_meta.items():
            dst.attrs[key] = json.dumps(value)
        entries = dst.create_group("entries")
        if old["entries"]:
            with h5py.File(final, "r", locking=False) as src:
                for key in old["entries"]:
                    src.copy(src["entries"][key], entries, name=key)
        for path in staged:
            with h5py.File(path, "r", locking=False) as src:
                for key in src["entries"]:
                    if key not in catalog["entries"]:
                        src.copy(src["entries"][key], entries, name=key)
                        catalog["entries"][key] = json.loads(src.attrs["summary"])
                        g = src["entries"][key]
                        catalog["specs"][g.attrs["spec_hash"]] = json.loads(g.attrs["spec"])
        dst.create_dataset("catalog", data=json.dumps(catalog, sort_keys=True))
    atomic_replace(tmp, final)
    for path in staged:
        path.unlink()
    with contextlib.suppress(OSError):
        staging_dir.rmdir()
    return catalog


def read_entry(f: h5py.File, key: str) -> tuple[np.ndarray, dict[str, Any]]:
    """(frames uint8 (T, 3, H, W), meta) of entry ``key`` of an open shard file, checked against the
    entry's checksum; raises :class:`~cache_builder.errors.CorruptEntryError` naming the entry and shard."""
    try:
        g = f["entries"][key]
        frames = g["frames"][()]
        meta_json = g.attrs["meta"]
        problem = checksum_problem(key, g.attrs, meta_json, frames)
        meta = json.loads(meta_json) if problem is None else {}
    except (OSError, KeyError, ValueError) as e:  # HDF5 cannot decode what is stored, or parts are gone
        raise CorruptEntryError(key, f.filename, f"unreadable ({e})") from e
    if problem is not None:
        raise CorruptEntryError(key, f.filename, problem)
    return frames, meta


def entry_attrs(f: h5py.File, key: str) -> dict[str, Any]:
    """All stored attributes of an entry, JSON fields decoded (for verify and debugging)."""
    g = f["entries"][key]
    out: dict[str, Any] = {}
    for name, value in g.attrs.items():
        out[name] = json.loads(value) if name in ("spec", "meta", "source") else value
    return out
