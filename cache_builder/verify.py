"""``python -m cache_builder verify``: completeness, hashes and spec of a built cache.

Checks every index entry against its shard (present, uint8 (T, 3, H, W), frame checksums, stored spec
hashing to the key's spec part, processor metadata present), optionally re-hashes the source files
against the keys' content part, checks that every input of a records file is either stored or recorded
in ``failures.jsonl``, and that the cache holds an expected spec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (zstd filter)

from cache_builder.index import FAILURES_NAME, STAGING_DIR, load_index
from cache_builder.records import content_hash, entry_key, load_records, media_items, resolve
from cache_builder.spec import Spec, diff, spec_from_dict, spec_hash
from cache_builder.store import checksum_problem, frames_digest

VIDEO_META_KEYS = ("fps", "frames_indices", "total_num_frames", "sample_fps")


@dataclass
class Report:
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "problems": self.problems, "notes": self.notes}


def _check_entry(f: h5py.File, key: str, summary: dict[str, Any], check_data: bool) -> list[str]:
    if key not in f.get("entries", {}):
        return [f"{key}: missing from its shard"]
    g = f["entries"][key]
    out = []
    stored_hash = g.attrs["spec_hash"]
    if not key.endswith("-" + stored_hash) or summary["spec"] != stored_hash:
        out.append(f"{key}: stored spec hash {stored_hash} does not match the key / index")
    if spec_hash(spec_from_dict(json.loads(g.attrs["spec"]))) != stored_hash:
        out.append(f"{key}: stored spec does not hash to {stored_hash}")
    ds = g["frames"]
    if ds.dtype != "uint8" or ds.ndim != 4 or ds.shape[1] != 3 or list(ds.shape) != summary["shape"]:
        out.append(f"{key}: frames {ds.dtype} {ds.shape}, index says {summary['shape']}")
    meta = json.loads(g.attrs["meta"])
    if summary["kind"] == "video":
        missing = [k for k in VIDEO_META_KEYS if k not in meta]
        if missing:
            out.append(f"{key}: meta lacks {missing}")
        elif len(meta["frames_indices"]) != ds.shape[0]:
            out.append(f"{key}: {len(meta['frames_indices'])} frame indices for {ds.shape[0]} frames")
    if check_data:
        frames = ds[()]
        if frames_digest(frames) != g.attrs["frames_sha256"]:
            out.append(f"{key}: frame data checksum mismatch")
        elif "checksum" in g.attrs and (problem := checksum_problem(key, g.attrs, g.attrs["meta"], frames)):
            out.append(f"{key}: {problem}")  # what every read checks (metadata included)
    return out


def verify(
    cache_dir: str | Path,
    video_root: str | Path | None = None,
    input_path: str | Path | None = None,
    expected: list[Spec] | None = None,
    check_data: bool = True,
    check_sources: bool = True,
) -> Report:
    """Check a cache folder; problems make ``report.ok`` false."""
    cache_dir = Path(cache_dir)
    rep = Report()
    idx = load_index(cache_dir)
    if idx is None:
        rep.problems.append(f"{cache_dir}: no index.json (build not finalized)")
        return rep
    by_shard: dict[str, list[str]] = {}
    for key, e in idx["entries"].items():
        by_shard.setdefault(e["shard"], []).append(key)
    for shard, keys in sorted(by_shard.items()):
        if not (cache_dir / shard).is_file():
            rep.problems.append(f"{shard}: shard file missing ({len(keys)} entries)")
            continue
        with h5py.File(cache_dir / shard, "r", locking=False) as f:
            for key in keys:
                rep.problems += _check_entry(f, key, idx["entries"][key], check_data)
                rep.checked += 1
    if check_sources and video_root is not None:
        for key, e in idx["entries"].items():
            path = resolve(e["path"], video_root)
            if path.is_file() and content_hash(path) != key.split("-")[0]:
                rep.problems.append(f"{e['path']}: file content changed since it was cached ({key})")
    for spec in expected or []:
        if spec.hash() not in idx["specs"]:
            stored = [spec_from_dict(s) for s in idx["specs"].values() if s.get("kind") == spec.kind]
            lines = ["; ".join(diff(spec, s)) for s in stored] or ["no entries of this kind"]
            rep.problems.append(f"expected {spec.kind} spec {spec.hash()} not in cache: " + " | ".join(lines))
    if input_path is not None:
        rep.problems += _completeness(cache_dir, idx, input_path, video_root, expected)
    if (cache_dir / STAGING_DIR).is_dir() and any((cache_dir / STAGING_DIR).rglob("*.h5")):
        rep.notes.append("staging/ holds entries of an unfinished build (rerun the build to complete it)")
    return rep


def _completeness(
    cache_dir: Path, idx: dict, input_path, video_root, expected: list[Spec] | None
) -> list[str]:
    """Every input is stored under the expected spec of its kind, or recorded as a failure."""
    specs = {s.kind: s.hash() for s in expected or []}
    for kind in ("video", "image"):
        if kind not in specs:
            hashes = {h for h, s in idx["specs"].items() if s.get("kind") == kind}
            if len(hashes) == 1:
                specs[kind] = hashes.pop()
    failed = set()
    fail_path = cache_dir / FAILURES_NAME
    if fail_path.is_file():
        for line in fail_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                failed.add((rec["kind"], rec["path"], rec["spec"]))
    problems = []
    for item in media_items(load_records(input_path)):
        h = specs.get(item.kind)
        if h is None:
            problems.append(f"{item.kind} {item.path}: no {item.kind} spec in cache")
            continue
        src = idx["sources"].get(item.path)
        if src and entry_key(src["content"], h) in idx["entries"]:
            continue
        if (item.kind, item.path, h) in failed:
            continue
        where = resolve(item.path, video_root)
        problems.append(f"{item.kind} {item.path}: neither cached nor recorded as a failure ({where})")
    return problems
