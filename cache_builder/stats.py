"""``python -m cache_builder stats``: counts, bytes, compression and failures of a cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cache_builder.index import FAILURES_NAME, load_index


def cache_stats(cache_dir: str | Path) -> dict[str, Any]:
    """Entry counts per kind and spec, raw vs stored bytes, compression ratio, failures per reason."""
    cache_dir = Path(cache_dir)
    idx = load_index(cache_dir)
    if idx is None:
        raise ValueError(f"{cache_dir}: no index.json (build not finalized)")
    per_kind: dict[str, int] = {}
    per_spec: dict[str, int] = {}
    frames = raw = stored = 0
    for e in idx["entries"].values():
        per_kind[e["kind"]] = per_kind.get(e["kind"], 0) + 1
        per_spec[e["spec"]] = per_spec.get(e["spec"], 0) + 1
        frames += e["shape"][0]
        raw += e["nbytes"]
        stored += e["nbytes_stored"]
    reasons: dict[str, int] = {}
    fail_path = cache_dir / FAILURES_NAME
    if fail_path.is_file():
        for line in fail_path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)["reason"]
                reasons[r] = reasons.get(r, 0) + 1
    return {
        "cache": str(cache_dir),
        "entries": len(idx["entries"]),
        "by_kind": per_kind,
        "by_spec": per_spec,
        "specs": idx["specs"],
        "sources": len(idx["sources"]),
        "frames": frames,
        "bytes_raw": raw,
        "bytes_stored": stored,
        "bytes_files": sum(s["bytes"] for s in idx["shards"]),
        "compression_ratio": raw / stored if stored else 0.0,
        "shards": len(idx["shards"]),
        "failures": sum(reasons.values()),
        "failures_by_reason": reasons,
    }


def format_stats(s: dict[str, Any]) -> str:
    """Human-readable lines for the CLI."""
    lines = [
        f"cache            {s['cache']}",
        f"entries          {s['entries']}  ({', '.join(f'{k}: {v}' for k, v in sorted(s['by_kind'].items())) or 'none'})",
        f"specs            {', '.join(f'{h}: {n}' for h, n in sorted(s['by_spec'].items())) or 'none'}",
        f"frames           {s['frames']}",
        f"raw bytes        {s['bytes_raw'] / 1e6:.1f} MB",
        f"stored bytes     {s['bytes_stored'] / 1e6:.1f} MB in {s['shards']} shard file(s) ({s['bytes_files'] / 1e6:.1f} MB on disk)",
        f"compression      {s['compression_ratio']:.2f}x",
        f"failures         {s['failures']}  ({', '.join(f'{k}: {v}' for k, v in sorted(s['failures_by_reason'].items())) or 'none'})",
    ]
    return "\n".join(lines)
