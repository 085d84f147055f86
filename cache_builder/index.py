"""The cache index: written last and atomically, it is what makes entries visible to readers.

``index.json`` maps every entry key to its shard file, lists the specs present and maps each source path
(as written in the records) to its size, mtime and content hash, so a reader finds an entry without
hashing the video. It is rebuilt from the shards' catalogs (never from staging), so anything a killed
task left half-done is invisible. ``failures.jsonl`` is merged from the per-shard failure files at the
same time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cache_builder.store import FORMAT_VERSION, atomic_replace, read_catalog, tmp_name

INDEX_NAME = "index.json"
FAILURES_NAME = "failures.jsonl"
SHARDS_DIR = "shards"
STAGING_DIR = "staging"
FAILURES_DIR = "failures"


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}"


def shard_files(cache_dir: Path) -> list[Path]:
    """Complete shard files of a cache (temp files excluded)."""
    folder = Path(cache_dir) / SHARDS_DIR
    return sorted(p for p in folder.glob("shard-*.h5")) if folder.is_dir() else []


def load_index(cache_dir: str | Path) -> dict[str, Any] | None:
    """The index of a cache, or None when it has none yet."""
    path = Path(cache_dir) / INDEX_NAME
    if not path.is_file():
        return None
    index = json.loads(path.read_text())
    version = index.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{cache_dir}: cache format version {version} is not the supported version {FORMAT_VERSION}; "
            "rebuild the cache or read it with the matching vrl version."
        )
    return index


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = tmp_name(path)
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    atomic_replace(tmp, path)


def _merge_failures(
    cache_dir: Path, sources: dict[str, Any], entries: dict[str, Any]
) -> list[dict[str, Any]]:
    """Latest failure per (kind, path, spec), dropping inputs that have since been stored."""
    stored = {(e["kind"], e["path"], e["spec"]) for e in entries.values()}
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    folder = cache_dir / FAILURES_DIR
    files = sorted(folder.glob("shard-*.jsonl")) if folder.is_dir() else []
    for path in files:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            k = (rec["kind"], rec["path"], rec["spec"])
            if k in stored:
                continue
            if k not in latest or rec.get("time", 0) >= latest[k].get("time", 0):
                latest[k] = rec
    return [latest[k] for k in sorted(latest)]


def build_index(cache_dir: str | Path, specs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Scan shard catalogs and per-shard failures; write ``failures.jsonl`` then ``index.json``."""
    cache_dir = Path(cache_dir)
    entries: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, Any]] = {}
    shards = []
    all_specs = dict(specs or {})
    for shard in shard_files(cache_dir):
        catalog = read_catalog(shard)
        rel = str(shard.relative_to(cache_dir))
        shards.append({"file": rel, "entries": len(catalog["entries"]), "bytes": shard.stat().st_size})
        for key, summary in catalog["entries"].items():
            entries.setdefault(key, {**summary, "shard": rel})
        sources.update(catalog["sources"])
        all_specs.update(catalog.get("specs", {}))
    previous = load_index(cache_dir)
    if previous:
        all_specs = {**previous.get("specs", {}), **all_specs}
    used = {e["spec"] for e in entries.values()}
    failures = _merge_failures(cache_dir, sources, entries)
    used |= {f["spec"] for f in failures}
    index = {
        "format": "vrl-video-cache",
        "format_version": FORMAT_VERSION,
        "written": time.time(),
        "specs": {h: s for h, s in sorted(all_specs.items()) if h in used},
        "entries": dict(sorted(entries.items())),
        "sources": dict(sorted(sources.items())),
        "shards": shards,
        "num_failures": len(failures),
    }
    tmp = tmp_name(cache_dir / FAILURES_NAME)
    tmp.write_text("".join(json.dumps(f, sort_keys=True) + "\n" for f in failures))
    atomic_replace(tmp, cache_dir / FAILURES_NAME)
    write_json_atomic(cache_dir / INDEX_NAME, index)
    return index
