"""The build loop: plan shards, build one shard (skipping finished work), finalize the index.

Sharding assigns media by a hash of the file *size*: identical files have identical sizes, so a file
stored under two paths always lands in one shard and is decoded once (the same content under the same
spec is one key). Every shard task hashes its files (or trusts a recorded hash when path, size and
mtime match), skips keys already present in the output cache, in an earlier cache of ``cache_dir`` or
staged by a killed earlier run, and records bad inputs in its failure file instead of stopping.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cache_builder import index as cache_index
from cache_builder import lifetime
from cache_builder.config import CacheConfig
from cache_builder.errors import MediaError
from cache_builder.media import load_image, load_video
from cache_builder.records import (
    MediaItem,
    content_hash,
    entry_key,
    load_records,
    media_items,
    resolve,
    resolve_inside,
    stat_key,
)
from cache_builder.store import (
    Entry,
    assemble_shard,
    atomic_replace,
    read_catalog,
    staged_entries,
    tmp_name,
    write_staged,
)
from vrl.file_lock import file_lock
from vrl.log import get_logger

logger = get_logger(__name__)

SUMMARIES_DIR = "summaries"


def _bucket(size: int, num_shards: int) -> int:
    return int.from_bytes(hashlib.sha256(str(size).encode()).digest()[:8], "big") % num_shards


def plan_shards(cfg: CacheConfig, num_shards: int | None = None) -> list[dict[str, Any]]:
    """JSON-able shard tasks ``{"shard", "num_shards", "items": [[kind, path], ...]}``, one per shard."""
    n = num_shards or cfg.num_shards
    items = media_items(load_records(cfg.input))
    buckets: list[list[list[str]]] = [[] for _ in range(n)]
    for i, item in enumerate(items):
        try:
            size = resolve(item.path, cfg.video_root).stat().st_size
        except OSError:
            size = -1 - i  # missing: spread over shards, it will be recorded as a failure
        buckets[_bucket(size, n)].append([item.kind, item.path])
    return [{"shard": s, "num_shards": n, "items": b} for s, b in enumerate(buckets)]


@dataclass
class Known:
    """What already exists: entry keys, and recorded (size, mtime) → content hash per source path."""

    keys: set[str] = field(default_factory=set)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_catalog(self, catalog: dict[str, Any]) -> None:
        self.keys.update(catalog.get("entries", {}))
        self.sources.update(catalog.get("sources", {}))

    def content_of(self, path_given: str, size: int, mtime_ns: int) -> str | None:
        src = self.sources.get(path_given)
        if src and src["size"] == size and src["mtime_ns"] == mtime_ns:
            return src["content"]
        return None


def load_known(cfg: CacheConfig, staging: Path) -> Known:
    """Entries of the output cache's shards, the read-only caches' indexes and this shard's staging."""
    known = Known()
    for d in cfg.reuse_dirs():
        idx = cache_index.load_index(d)
        if idx:
            known.add_catalog(idx)
    for shard in cache_index.shard_files(Path(cfg.out_dir())):
        known.add_catalog(read_catalog(shard))
    known.keys.update(staged_entries(staging))
    return known


@dataclass
class ShardStats:
    stored: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_raw: int = 0
    bytes_stored: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)


def _make_entry(cfg: CacheConfig, item: MediaItem, path: Path, key: str, spec, source: dict) -> Entry:
    if item.kind == "video":
        frames, meta = load_video(
            path, spec, timeout_s=cfg.timeout_s, threads=cfg.decode_threads, decoder=cfg.decoder
        )
    else:
        frames, meta = load_image(path, spec)
    return Entry(key, item.kind, frames, meta, spec.to_dict(), spec.hash(), source)


class ShardWork:
    """The bookkeeping of one shard task, shared by the threads that decode its items concurrently."""

    def __init__(self, cfg: CacheConfig, known: Known) -> None:
        self.cfg, self.known = cfg, known
        self.sources: dict[str, dict[str, Any]] = {}
        self.stats = ShardStats()
        self.lock = threading.Lock()
        self.inflight: dict[str, threading.Event] = {}

    def _claim(self, key: str) -> bool:
        """True when this thread should build ``key``; False when it exists (after waiting for a thread
        that is building the same content right now)."""
        while True:
            with self.lock:
                if key in self.known.keys:
                    return False
                busy = self.inflight.get(key)
                if busy is None:
                    self.inflight[key] = threading.Event()
                    return True
            busy.wait()  # the other thread stored it (→ skip) or failed (→ try ourselves)

    def _release(self, key: str, stored: bool) -> None:
        with self.lock:
            if stored:
                self.known.keys.add(key)
            self.inflight.pop(key).set()

    def process(self, item: MediaItem) -> Entry | None:
        """Decode ``item`` into an entry to store, or record it as skipped / failed (then None).

        The entry is counted and its key marked known here, before it is written, so that a copy of the
        same file later in the shard is skipped even while this entry is still being written.
        """
        cfg = self.cfg
        spec = cfg.video_spec() if item.kind == "video" else cfg.image_spec()
        key, claimed = None, False
        try:
            path = resolve_inside(item.path, cfg.video_root, cfg.allow_outside_root)
            if not path.is_file():
                raise MediaError("missing", f"file not found: {path}")
            size, mtime_ns = stat_key(path)
            if size == 0:
                raise MediaError("empty_file", "the file is empty (0 bytes)")
            content = self.known.content_of(item.path, size, mtime_ns) or content_hash(path)
            source = {"path": item.path, "size": size, "mtime_ns": mtime_ns, "content": content}
            key = entry_key(content, spec.hash())
            claimed = self._claim(key)
            if not claimed:
                with self.lock:
                    self.sources[item.path] = source
                    self.stats.skipped += 1
                return None
            entry = _make_entry(cfg, item, path, key, spec, source)
        except (MediaError, OSError) as e:
            reason = e.reason if isinstance(e, MediaError) else "unreadable"
            failure = {
                "kind": item.kind,
                "path": item.path,
                "spec": spec.hash(),
                "reason": reason,
                "message": str(e),
                "time": time.time(),
            }
            with self.lock:
                self.stats.failed += 1
                self.stats.failures.append(failure)
            if claimed:  # let a thread waiting for the same content try it
                self._release(key, stored=False)
            logger.warning("%s %s: %s (%s)", item.kind, item.path, reason, e)
            return None
        with self.lock:
            self.sources[item.path] = source
            self.stats.stored += 1
            self.stats.bytes_raw += entry.frames.nbytes
        self._release(key, stored=True)
        return entry


def _clean_temp(folder: Path, name: str = "") -> None:
    """Remove temp files a killed run of this shard left (never visible to readers, never reused).

    ``name``: only files of this shard; the folder is shared with the shards other array tasks or ranks
    are writing right now, and their temp files are not stale."""
    if folder.is_dir():
        for tmp in folder.glob(f".{name}*.tmp-*"):
            tmp.unlink(missing_ok=True)


def build_shard(cfg: CacheConfig, task: dict[str, Any], position: int = 0) -> dict[str, Any]:
    """Build one shard task (see :func:`plan_shards`); resumable; returns its summary."""
    # one torch thread per decoding thread: more spin for cores the decoder processes hold (measured on
    # 2 cores: resizing on 2 threads next to a 1-thread decoder made builds 11 % slower)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # one process per shard at a time: two jobs building the same cache (two training runs that start
    # together on a shared cache) would clean and assemble each other's staging files; the second one
    # waits, then finds every entry stored and skips it
    name = cache_index.shard_name(task["shard"], task["num_shards"])
    try:
        with file_lock(Path(cfg.out_dir()) / cache_index.STAGING_DIR / f"{name}.lock"):
            return _build_shard(cfg, task, position)
    finally:
        torch.set_num_threads(threads)


def _build_shard(cfg: CacheConfig, task: dict[str, Any], position: int) -> dict[str, Any]:
    t0 = time.time()
    out = Path(cfg.out_dir())
    name = cache_index.shard_name(task["shard"], task["num_shards"])
    shards_dir, staging = out / cache_index.SHARDS_DIR, out / cache_index.STAGING_DIR / name
    shards_dir.mkdir(parents=True, exist_ok=True)
    for folder in (shards_dir, out / cache_index.FAILURES_DIR):
        _clean_temp(folder, f"{name}.")  # shared with the other shards: only this shard's files
    _clean_temp(staging)  # this shard's own folder
    work = ShardWork(cfg, load_known(cfg, staging))
    stats, sources = work.stats, work.sources
    items = [MediaItem(kind, path) for kind, path in task["items"]]
    items.sort(key=lambda it: -_size_or_zero(it, cfg))  # largest first: no big video left alone at the end
    bar = tqdm(
        total=len(items), desc=name, position=position, disable=not cfg.progress, file=sys.stderr, leave=False
    )
    parallel = parallel_videos(cfg)
    # ``parallel`` items are decoded at once (each thread drives its own decoder process and resizes with
    # one torch thread), and one writer thread compresses and writes finished entries (h5py releases the
    # GIL) meanwhile. Entries are written in item order; at most parallel + 1 are held in memory.
    with (
        ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="cache-decode") as decoders,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-writer") as writer,
    ):
        decoding: deque[Future[Entry | None]] = deque()
        writing: Future[int] | None = None
        pending = iter(items)
        for item in itertools.islice(pending, parallel):
            decoding.append(decoders.submit(work.process, item))
        while decoding:
            entry = decoding.popleft().result()
            for item in itertools.islice(pending, 1):
                decoding.append(decoders.submit(work.process, item))
            if writing is not None:
                stats.bytes_stored += writing.result()
                writing = None
            if entry is not None:
                args = (staging, entry, cfg.compression, cfg.compression_level, cfg.chunks)
                writing = writer.submit(write_staged, *args)
            bar.update(1)
            bar.set_postfix(stored=stats.stored, skipped=stats.skipped, failed=stats.failed, refresh=False)
        if writing is not None:
            stats.bytes_stored += writing.result()
    bar.close()
    assemble_shard(shards_dir / f"{name}.h5", staging, sources, {"spec_video": cfg.video_spec().to_dict()})
    _write_failures(out / cache_index.FAILURES_DIR / f"{name}.jsonl", stats.failures)
    seconds = time.time() - t0
    summary = {
        "shard": name,
        "items": len(items),
        "stored": stats.stored,
        "skipped": stats.skipped,
        "failed": stats.failed,
        "seconds": seconds,
        "bytes_raw": stats.bytes_raw,
        "bytes_stored": stats.bytes_stored,
        "failures_by_reason": _count(f["reason"] for f in stats.failures),
    }
    path = out / SUMMARIES_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    tmp.write_text(json.dumps(summary, sort_keys=True))
    atomic_replace(tmp, path)
    logger.info(
        "%s: %d items, stored %d, skipped %d, failed %d in %.1f s",
        name, len(items), stats.stored, stats.skipped, stats.failed, seconds,
    )  # fmt: skip
    return summary


def shard_summaries(cfg: CacheConfig, num_shards: int) -> list[dict[str, Any]]:
    """The summaries the last run of each of ``num_shards`` shards wrote (for finalize in another process)."""
    out = []
    for i in range(num_shards):
        path = Path(cfg.out_dir()) / SUMMARIES_DIR / f"{cache_index.shard_name(i, num_shards)}.json"
        if path.is_file():
            out.append(json.loads(path.read_text()))
    return out


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _write_failures(path: Path, failures: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    ordered = sorted(failures, key=lambda f: (f["kind"], f["path"]))  # threads finish in any order
    tmp.write_text("".join(json.dumps(f, sort_keys=True) + "\n" for f in ordered))
    atomic_replace(tmp, path)


def finalize(cfg: CacheConfig, summaries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write the index (last, atomically) and return the build summary."""
    specs = {s.hash(): s.to_dict() for s in (cfg.video_spec(), cfg.image_spec())}
    idx = cache_index.build_index(cfg.out_dir(), specs)
    summary = summarize(summaries or [])
    summary.update(entries=len(idx["entries"]), failures_total=idx["num_failures"], out=cfg.out_dir())
    logger.info(
        "cache %s: %d entries; this run stored %d, skipped %d, failed %d; %.2f videos/s; %.1f MB written, ratio %.2f",
        cfg.out_dir(), summary["entries"], summary["stored"], summary["skipped"], summary["failed"],
        summary["items_per_s"], summary["mb_written"], summary["compression_ratio"],
    )  # fmt: skip
    return summary


def summarize(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over shard summaries: items/s (over the slowest shard), MB written, compression ratio."""
    total = {k: sum(s.get(k, 0) for s in summaries) for k in ("items", "stored", "skipped", "failed")}
    raw = sum(s.get("bytes_raw", 0) for s in summaries)
    stored = sum(s.get("bytes_stored", 0) for s in summaries)
    wall = max((s.get("seconds", 0.0) for s in summaries), default=0.0)
    reasons: dict[str, int] = {}
    for s in summaries:
        for r, n in s.get("failures_by_reason", {}).items():
            reasons[r] = reasons.get(r, 0) + n
    return {
        **total,
        "items_per_s": total["stored"] / wall if wall else 0.0,
        "mb_written": stored / 1e6,
        "mb_raw": raw / 1e6,
        "compression_ratio": raw / stored if stored else 0.0,
        "failures_by_reason": reasons,
        "shards": len(summaries),
    }


def _pool_task(args: tuple[CacheConfig, dict[str, Any], int]) -> dict[str, Any]:
    cfg, task, position = args
    return build_shard(cfg, task, position)


def _size_or_zero(item: MediaItem, cfg: CacheConfig) -> int:
    try:
        return resolve(item.path, cfg.video_root).stat().st_size
    except OSError:
        return 0


def parallel_videos(cfg: CacheConfig) -> int:
    """Videos one worker decodes at once: ``cfg.parallel_videos``, or (0) its share of the cores plus one.

    The spare keeps the cores busy while a video starts, waits for the writer or resizes its last
    frames: on 2 cores, 3 at once built the benchmark set 12 % faster than 2 (4: no better).
    """
    if cfg.parallel_videos > 0:
        return cfg.parallel_videos
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = cfg.num_workers if cfg.launcher == "local" else 1
    return max(1, cores // max(workers, 1)) + 1


def build_local(cfg: CacheConfig) -> dict[str, Any]:
    """Plan, build every shard here (``num_workers`` processes), finalize."""
    tasks = plan_shards(cfg)
    if cfg.num_workers > 1 and len(tasks) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        # workers end with this process (kill -9 included), see cache_builder.lifetime
        workers = min(cfg.num_workers, len(tasks))
        with ctx.Pool(workers, initializer=lifetime.end_with_parent, initargs=(os.getpid(),)) as pool:
            summaries = pool.map(_pool_task, [(cfg, t, i) for i, t in enumerate(tasks)])
    else:
        summaries = [build_shard(cfg, t) for t in tasks]
    return finalize(cfg, summaries)


def array_task_index() -> int:
    """This Slurm array task's index (launcher=array run by hand inside ``sbatch --array``)."""
    for var in ("SLURM_ARRAY_TASK_ID", "TASK_INDEX"):
        if var in os.environ:
            return int(os.environ[var])
    raise ValueError("launcher=array needs SLURM_ARRAY_TASK_ID (run inside sbatch --array=0-<num_shards-1>).")
