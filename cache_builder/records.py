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
from vrl.config import UserError

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


def media_problems(record: dict[str, Any]) -> list[str]:
    """What is wrong with a record's media fields (empty: nothing): ``path`` a string, ``videos`` /
    ``images`` / ``image_path`` a string or a list of strings, and a ``data_type`` of video or image names
    its file. A wrong type would otherwise surface as a crash deep in a job, or the media be skipped."""
    out = []
    path = record.get("path")
    if path is not None and not isinstance(path, str):
        out.append(f"has path={path!r}; expected a string (the media file, relative to the media root)")
    for key in ("videos", "images", "image_path"):
        value = record.get(key)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            out.append(f"has {key}={value!r}; expected a string or a list of strings")
    if not out and record.get("data_type") in KINDS and not media_of_record(record):
        out.append(f"has data_type={record['data_type']!r} but no path (its {record['data_type']} file)")
    return out


def load_records(path: str | Path, max_listed: int = 5) -> list[dict[str, Any]]:
    """Read a JSON list or a JSONL file of records; every record must be an object with valid media fields.

    A file that is missing or not JSON, or records that are not objects or have media fields of the wrong
    type, raise :class:`~vrl.config.UserError` naming the file and the records (the first
    ``max_listed``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file {'is a folder' if path.is_dir() else 'not found'}: {path}")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (expected JSON or JSONL records)") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from None
    else:
        data = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    data.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    errors = []
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            errors.append(f"record {i} is a {type(record).__name__}, not a JSON object")
            continue
        errors += [
            f"record {i} (problem_id {record.get('problem_id', '?')}) {p}" for p in media_problems(record)
        ]
    if errors:
        more = f"\n  ... and {len(errors) - max_listed} more" if len(errors) > max_listed else ""
        raise UserError(f"{path}: invalid records:\n  " + "\n  ".join(errors[:max_listed]) + more)
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
