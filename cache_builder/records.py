"""The media a dataset's records point at, and the content hash that identifies a file.

Records are the unified format of EasyVideoR1 / Video-R1 (a JSON list or JSONL, one dict per sample):
``path`` (relative to ``video_root``) with ``data_type`` ``video`` or ``image``; extra images in
``image_path``; EasyR1-style ``videos`` / ``images`` lists are accepted too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cache_builder.errors import MediaError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
KINDS = ("video", "image")


@dataclass(frozen=True)
class MediaItem:
    """One file a record needs, by the path written in the record."""

    kind: str
    path: str


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str) and v]


def kind_of(path: str, data_type: str | None = None) -> str:
    if data_type in KINDS:
        return data_type
    return "image" if Path(path).suffix.lower() in IMAGE_EXTENSIONS else "video"


def media_of_record(record: dict[str, Any]) -> list[MediaItem]:
    """Every media file of a record, the primary one (``path``) first."""
    items = []
    if record.get("path"):
        items.append(MediaItem(kind_of(record["path"], record.get("data_type")), record["path"]))
    items += [MediaItem("video", p) for p in _as_list(record.get("videos"))]
    items += [MediaItem("image", p) for p in _as_list(record.get("images"))]
    items += [MediaItem("image", p) for p in _as_list(record.get("image_path"))]
    return items


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON list or a JSONL file of records."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"input file not found: {path}")
    text = path.read_text()
    stripped = text.lstrip()
    if stripped.startswith("["):
        data = json.loads(text)
    else:
        data = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    data.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not a JSON object ({e.msg})") from e
    if not all(isinstance(r, dict) for r in data):
        raise ValueError(f"{path}: every record must be a JSON object")
    return data


def media_items(records: list[dict[str, Any]]) -> list[MediaItem]:
    """Distinct media of all records, in first-seen order."""
    seen: dict[MediaItem, None] = {}
    for record in records:
        for item in media_of_record(record):
            seen.setdefault(item, None)
    return list(seen)


def resolve(path: str, video_root: str | Path | None) -> Path:
    """Where a record's path is on this machine (``file://`` stripped; relative to ``video_root``)."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    p = Path(path)
    if video_root and not p.is_absolute():
        p = Path(video_root) / p
    return p


def resolve_inside(path: str, root: str | Path | None, allow_outside_root: bool = False) -> Path:
    """Where a record's path is, refusing one that leaves ``root`` (``../``, an absolute path, a symlink
    pointing elsewhere): raises :class:`MediaError` ``outside_root``. Records come from other people
    (a downloaded dataset, another lab's annotations) and must not make a job read whatever the job's
    account can read. The one check of training, evaluation and the cache build.

    Returns the fully resolved path (symlinks followed), which is what was checked. With
    ``allow_outside_root`` or without a root (nothing to stay inside) it is :func:`resolve`'s answer.
    """
    local = resolve(path, root)
    if allow_outside_root or not root:
        return local
    real_root = Path(root).resolve()
    real = local.resolve()  # non-strict: a missing file is checked on its normalised path
    if not real.is_relative_to(real_root):
        raise MediaError(
            "outside_root",
            f"{path!r} resolves to {real}, outside the media root {real_root}: refused (set "
            "allow_outside_root=true if the records' files are meant to live elsewhere)",
        )
    return real


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes: the identity of a video across paths, machines and labs."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def stat_key(path: str | Path) -> tuple[int, int]:
    """(size, mtime_ns): when both match a recorded source, its content hash is trusted without rehashing."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def entry_key(content: str, spec_hash: str) -> str:
    """Key of an entry: the same file under two paths is one entry; under two specs, two entries."""
    return f"{content}-{spec_hash}"
