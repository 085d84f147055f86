"""Benchmark the cache against decoding on the fly: ``python -m cache_builder.benchmark [key=value ...]``.

Generates ``num_videos`` videos of ``min_seconds``–``max_seconds`` at 360p–720p (once, reused), builds a
cache, and prints ratios measured in the same run:

- model-ready batch (frames + processor outputs) from the cache vs qwen-vl-utils + processor from the mp4;
- what the checksum every read verifies costs of those reads;
- cache build time per video (one build of the whole set, default settings) vs qwen-vl-utils
  ``fetch_video`` on the same videos (one call per video, as a data loader makes them);
- cache build vs the decode-only floor ``ffmpeg -i X -f null -``;
- bytes per video vs a float32 ``torch.save`` of the same frames (EasyVideoR1's cache format);
- lossless compression of the stored frames: none vs zstd levels (how FORMAT.md's default was chosen).

qwen-vl-utils and decord are test dependencies: this script needs the test extras installed. Not a test:
it takes minutes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from cache_builder.build import build_local
from cache_builder.config import CacheConfig
from cache_builder.processor_inputs import processor_kwargs
from cache_builder.reader import open_cache
from cache_builder.spec import VideoSpec
from cache_builder.store import CHECKSUM, chunk_shape, compression_kwargs, entry_checksum
from vrl.config import ConfigError, parse
from vrl.log import get_logger, result_logger, setup_logging

logger = get_logger(__name__)

SIZES = [(640, 360), (854, 480), (1280, 720), (960, 540)]
RATES = ["24", "25", "30", "30000/1001"]
PROMPT = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Describe the video.<|im_end|>\n"


@dataclass
class BenchConfig:
    dir: str = ""
    """Where videos and caches go (default: <tmp>/vrl-cache-bench); videos are generated once and reused."""
    num_videos: int = 20
    """Generated videos."""
    min_seconds: float = 10.0
    """Shortest video."""
    max_seconds: float = 60.0
    """Longest video."""
    family: str = "qwen2_5_vl"
    """Model family of the spec and of the tiny processor."""
    fps: float = 2.0
    """Sampling rate of the spec."""
    max_frames: int = 32
    """Frame cap of the spec."""
    repeats: int = 3
    """Reads per video when timing model-ready batches (the median is kept)."""
    rounds: int = 3
    """Timed passes over the whole set per contender (rotating order; the median is kept)."""
    single: int = 5
    """Videos also built one per build, to show a lone video's latency with the fixed costs."""
    chunks: str = "video"
    """HDF5 chunk layout of the built caches (the build's ``chunks``: video or frame)."""


def _source(i: int, w: int, h: int, rate: str, seconds: float) -> list[str]:
    """lavfi inputs: moving test patterns, half of them with temporal noise (harder to compress, like camera video)."""
    kinds = [
        f"testsrc2=size={w}x{h}:rate={rate}",
        f"smptehdbars=size={w}x{h}:rate={rate}",
        f"color=c=teal:size={w}x{h}:rate={rate}[bg];testsrc=size={w // 4}x{h // 4}:rate={rate}[fg];"
        f"[bg][fg]overlay=x='mod(t*120,{w})':y='mod(t*70,{h})'",
        f"life=size={w // 4}x{h // 4}:rate={rate}:mold=10:ratio=0.3,scale={w}:{h}",
    ]
    graph = kinds[i % len(kinds)]
    if i % 2 == 1:
        graph += ",noise=alls=12:allf=t" if ";" not in graph else "[v];[v]noise=alls=12:allf=t"
    return (
        ["-f", "lavfi", "-t", f"{seconds:.2f}", "-i", graph]
        if ";" not in graph
        else ["-t", f"{seconds:.2f}", "-filter_complex", graph]
    )


def generate_videos(cfg: BenchConfig, folder: Path) -> list[Path]:
    """Create (or reuse) the benchmark videos; h264 yuv420p mp4 at 360p–720p."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(cfg.num_videos):
        w, h = SIZES[i % len(SIZES)]
        rate = RATES[(i // len(SIZES)) % len(RATES)]
        span = cfg.max_seconds - cfg.min_seconds
        seconds = cfg.min_seconds + (
            span * ((i * 7) % max(cfg.num_videos, 1)) / max(cfg.num_videos - 1, 1) if span else 0
        )
        path = folder / f"bench_{i:02d}_{h}p_{seconds:.0f}s.mp4"
        if not path.exists():
            tmp = path.with_name("." + path.name)
            cmd = ["ffmpeg", "-v", "error", "-y", *_source(i, w, h, rate, seconds)]
            cmd += [
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "26",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "mp4",
                str(tmp),
            ]
            subprocess.run(cmd, check=True)
            tmp.rename(path)
        paths.append(path)
    return paths


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg, ffprobe), all threads: robust to load."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(fn, *args, **kwargs) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def _qwen_fetch(path: Path, spec: VideoSpec):
    from qwen_vl_utils import vision_process as vp

    video, meta = vp.fetch_video(
        {"video": str(path), **spec.to_qwen_ele()},
        image_patch_size=spec.patch_size,
        return_video_metadata=True,
    )
    if meta.get("video_backend") != "decord":
        raise RuntimeError(
            f"qwen-vl-utils used {meta.get('video_backend')}, not decord: set FORCE_QWENVL_VIDEO_READER=decord"
        )
    return video, meta


def _processor(family: str):
    from transformers import AutoProcessor

    from vrl.models.tiny import resolve_model

    return AutoProcessor.from_pretrained(
        resolve_model({"qwen2_5_vl": "tiny-qwen2.5-vl", "qwen3_vl": "tiny-qwen3-vl"}[family])
    )


def model_ready(paths: list[Path], spec: VideoSpec, cache: list[Path], repeats: int) -> dict[str, float]:
    """Median seconds per video: frames only and frames + processor, from the cache and from the mp4."""
    from cache_builder.fast_processing import accelerate

    processor = _processor(spec.family)
    fast = accelerate(_processor(spec.family))  # what evaluation uses on cached frames
    # what training uses: uint8 patches, normalised by the model (vrl.models.pixels) on the accelerator
    uint8 = accelerate(_processor(spec.family), uint8_patches=True)
    reader = open_cache(cache, expected_spec=spec)
    t = {
        "cache_frames": [],
        "qwen_frames": [],
        "cache_batch": [],
        "cache_batch_fast": [],
        "cache_batch_uint8": [],
        "cache_checksum": [],
        "qwen_batch": [],
    }
    for p in paths:
        runs = {k: [] for k in t}
        key = reader.find(str(p)).key
        for _ in range(repeats):
            dt, (frames, meta) = _timed(reader.get, str(p))
            runs["cache_frames"].append(dt)
            # the check reader.get just made (included in dt): timed again alone
            meta_json = json.dumps(meta, sort_keys=True)
            runs["cache_checksum"].append(_timed(entry_checksum, key, meta_json, frames)[0])
            dt2, _ = _timed(
                processor, text=[PROMPT], return_tensors="pt", **processor_kwargs(videos=[(frames, meta)])
            )
            runs["cache_batch"].append(dt + dt2)
            dt3, _ = _timed(
                fast, text=[PROMPT], return_tensors="pt", **processor_kwargs(videos=[(frames, meta)])
            )
            runs["cache_batch_fast"].append(dt + dt3)
            dt4, _ = _timed(
                uint8, text=[PROMPT], return_tensors="pt", **processor_kwargs(videos=[(frames, meta)])
            )
            runs["cache_batch_uint8"].append(dt + dt4)
            dt, (video, vmeta) = _timed(_qwen_fetch, p, spec)
            runs["qwen_frames"].append(dt)
            dt2, _ = _timed(
                processor, text=[PROMPT], videos=[video], video_metadata=[vmeta], do_resize=False,
                do_sample_frames=False, return_tensors="pt",
            )  # fmt: skip
            runs["qwen_batch"].append(dt + dt2)
        for k, v in runs.items():
            t[k].append(float(np.median(v)))
    return {k: float(np.sum(v)) / len(paths) for k, v in t.items()}


def torch_save_bytes(cache: list[Path], spec: VideoSpec, paths: list[Path]) -> int:
    """Bytes of float32 ``torch.save`` of the same frames (what EasyVideoR1's cache writes)."""
    reader = open_cache(cache, expected_spec=spec)
    total = 0
    for p in paths:
        buf = io.BytesIO()
        torch.save(torch.from_numpy(reader.get(str(p))[0]).float(), buf)
        total += buf.tell()
    return total


def compression_table(
    cache: list[Path], spec: VideoSpec, paths: list[Path], folder: Path
) -> list[dict[str, Any]]:
    """Stored bytes, write and cold-ish read throughput of the same frames under each compression."""
    reader = open_cache(cache, expected_spec=spec)
    clips = [reader.get(str(p))[0] for p in paths]
    raw = sum(c.nbytes for c in clips)
    rows = []
    for name, comp, level, chunking in [
        ("none", "none", 0, "video"),
        ("zstd-1", "zstd", 1, "video"),
        ("zstd-3", "zstd", 3, "video"),
        ("zstd-9", "zstd", 9, "video"),
        ("zstd-1, chunks=frame", "zstd", 1, "frame"),
    ]:
        path = folder / "compression.h5"
        t0 = time.perf_counter()
        with h5py.File(path, "w") as f:
            for i, c in enumerate(clips):
                chunks = chunk_shape(c.shape, chunking)
                f.create_dataset(str(i), data=c, chunks=chunks, **compression_kwargs(comp, level))
        write_s = time.perf_counter() - t0
        size = path.stat().st_size
        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            for i in range(len(clips)):
                f[str(i)][()]
        read_s = time.perf_counter() - t0
        rows.append(
            {
                "compression": name,
                "bytes": size,
                "ratio": raw / size,
                "write_MBps": raw / 1e6 / write_s,
                "read_MBps": raw / 1e6 / read_s,
            }
        )
        path.unlink()
    return rows


def _build(paths: list[Path], folder: Path, cfg: BenchConfig) -> dict[str, Any]:
    """A complete build (hash, probe, decode, write, assemble, index) of ``paths`` into a new cache, with
    the build's default settings; the decoder servers are stopped at the end, so their CPU time is
    counted (as finished children)."""
    from cache_builder.decode import SERVERS

    records = folder / "records.json"
    folder.mkdir(parents=True, exist_ok=True)
    records.write_text(json.dumps([{"path": str(p), "data_type": "video"} for p in paths]))
    args = [f"input={records}", f"out={folder / 'cache'}", f"family={cfg.family}", f"fps={cfg.fps}"]
    build_cfg, _ = parse(
        CacheConfig, [*args, f"max_frames={cfg.max_frames}", f"chunks={cfg.chunks}", "progress=false"]
    )
    try:
        return build_local(build_cfg)
    finally:
        SERVERS.shutdown()


def _floor_one(path: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True)


def run(cfg: BenchConfig) -> dict[str, Any]:
    """Time the three contenders on the whole set, ``rounds`` times in rotating order (load changes hit
    all alike), then the reads, bytes and compression."""
    os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
    root = Path(cfg.dir or Path(tempfile.gettempdir()) / "vrl-cache-bench")
    logger.info("generating %d videos in %s (reused when present)", cfg.num_videos, root / "videos")
    paths = generate_videos(cfg, root / "videos")
    spec = VideoSpec(family=cfg.family, fps=cfg.fps, max_frames=cfg.max_frames)
    builds = root / "builds"
    if builds.exists():
        shutil.rmtree(builds)
    for p in paths:  # same page-cache state for every contender
        p.read_bytes()
    load_before = os.getloadavg()[0]

    def fetch_all(r: int) -> None:
        for p in paths:  # each result dropped at once, as a data loader would (keeping 20 fills memory)
            _qwen_fetch(p, spec)

    contenders = {
        "floor": lambda r: [_floor_one(p) for p in paths],
        "qwen": fetch_all,
        "build": lambda r: _build(paths, builds / f"round{r}", cfg),
    }
    wall: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(cfg.rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            c0 = _cpu_seconds()
            dt, _ = _timed(contenders[name], r)
            wall[name].append(dt)
            cpu[name].append(_cpu_seconds() - c0)
            logger.info("round %d/%d: %s %.1f s for %d videos", r + 1, cfg.rounds, name, dt, len(paths))
    n = len(paths)
    floor_s, qwen_s, build_s = (float(np.median(wall[k])) / n for k in names)
    cpu_floor, cpu_qwen, cpu_build = (float(np.median(cpu[k])) / n for k in names)
    single = [_timed(_build, [p], builds / f"single{i}", cfg)[0] for i, p in enumerate(paths[: cfg.single])]
    caches = [builds / "round0" / "cache"]
    batch = model_ready(paths, spec, caches, cfg.repeats)
    entries = [e for c in caches for e in json.loads((c / "index.json").read_text())["entries"].values()]
    stored = sum(e["nbytes_stored"] for e in entries)
    saved = torch_save_bytes(caches, spec, paths)
    summary = {"load_average_1min": [load_before, os.getloadavg()[0]], "cpus": os.cpu_count()}
    result = {
        "videos": n,
        "rounds": cfg.rounds,
        "single": len(single),
        "chunks": cfg.chunks,
        "checksum": CHECKSUM,
        "seconds_of_video": sum(float(p.stem.split("_")[-1][:-1]) for p in paths),
        "spec": spec.to_dict(),
        "per_video_s": {
            "decode_floor": floor_s,
            "qwen_fetch_video": qwen_s,
            "cache_build": build_s,
            "cache_build_single_video": float(np.mean(single)) if single else float("nan"),
            "cpu_decode_floor": cpu_floor,
            "cpu_qwen_fetch_video": cpu_qwen,
            "cpu_cache_build": cpu_build,
            **batch,
        },
        "ratios": {
            "model_ready_batch_speedup": batch["qwen_batch"] / batch["cache_batch"],
            "model_ready_batch_fast_speedup": batch["qwen_batch"] / batch["cache_batch_fast"],
            "model_ready_batch_uint8_speedup": batch["qwen_batch"] / batch["cache_batch_uint8"],
            "frames_only_speedup": batch["qwen_frames"] / batch["cache_frames"],
            "build_vs_fetch_video": qwen_s / build_s,
            "build_vs_decode_floor": floor_s / build_s,
            "build_vs_fetch_video_cpu": cpu_qwen / cpu_build,
            "build_vs_decode_floor_cpu": cpu_floor / cpu_build,
            "bytes_vs_torch_save_float32": stored / saved,
        },
        "bytes_per_video": {"cache": stored / n, "torch_save_float32": saved / n},
        "machine": summary,
        "compression": compression_table(caches, spec, paths, root),
    }
    (root / "benchmark.json").write_text(json.dumps(result, indent=1))
    return result


def format_table(r: dict[str, Any]) -> str:
    pv, ra, by = r["per_video_s"], r["ratios"], r["bytes_per_video"]
    lines = [
        f"{r['videos']} videos, {r['seconds_of_video']:.0f} s of video, {r['machine']['cpus']} CPUs, median of {r['rounds']} rounds, chunks={r['chunks']}, "
        f"load average {r['machine']['load_average_1min'][0]:.1f} → {r['machine']['load_average_1min'][1]:.1f}, spec {r['spec']['family']} fps={r['spec']['fps']} max_frames={r['spec']['max_frames']}",
        "",
        "| measure | cache | reference | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
        f"| model-ready batch per video (frames + processor) | {pv['cache_batch'] * 1e3:.1f} ms | {pv['qwen_batch'] * 1e3:.1f} ms (qwen-vl-utils + processor) | {ra['model_ready_batch_speedup']:.1f}x faster | >= 20x |",
        f"| model-ready batch per video, exact fast path, float32 on the host (evaluation) | {pv['cache_batch_fast'] * 1e3:.1f} ms | {pv['qwen_batch'] * 1e3:.1f} ms (qwen-vl-utils + processor) | {ra['model_ready_batch_fast_speedup']:.1f}x faster | >= 20x |",
        f"| model-ready batch per video, uint8 patches normalised by the model (training) | {pv['cache_batch_uint8'] * 1e3:.1f} ms | {pv['qwen_batch'] * 1e3:.1f} ms (qwen-vl-utils + processor) | {ra['model_ready_batch_uint8_speedup']:.1f}x faster | >= 20x |",
        f"| frames only per video | {pv['cache_frames'] * 1e3:.1f} ms | {pv['qwen_frames'] * 1e3:.1f} ms (fetch_video) | {ra['frames_only_speedup']:.1f}x faster | |",
        f"| checksum every read verifies ({r.get('checksum', CHECKSUM)}; included in the cache rows above) | {pv['cache_checksum'] * 1e3:.1f} ms | {pv['cache_frames'] * 1e3:.1f} ms (frames only) | {100 * pv['cache_checksum'] / pv['cache_frames']:.1f} % of a read, {100 * pv['cache_checksum'] / pv['cache_batch_uint8']:.1f} % of a training batch | |",
        f"| build time per video (one build of the set, default settings) | {pv['cache_build']:.2f} s | {pv['qwen_fetch_video']:.2f} s (fetch_video) | {ra['build_vs_fetch_video']:.2f}x faster | >= 2x |",
        f"| build vs decode-only floor | {pv['cache_build']:.2f} s | {pv['decode_floor']:.2f} s (ffmpeg -f null) | {ra['build_vs_decode_floor']:.2f}x of floor speed | >= 0.7x |",
        f"| build of one video alone (fixed costs included; {r['single']} videos) | {pv['cache_build_single_video']:.2f} s | {pv['qwen_fetch_video']:.2f} s (fetch_video, mean of the set) | {pv['qwen_fetch_video'] / pv['cache_build_single_video']:.2f}x faster | |",
        f"| build CPU time per video | {pv['cpu_cache_build']:.2f} s | {pv['cpu_qwen_fetch_video']:.2f} s (fetch_video) | {ra['build_vs_fetch_video_cpu']:.2f}x less | |",
        f"| build CPU time vs floor | {pv['cpu_cache_build']:.2f} s | {pv['cpu_decode_floor']:.2f} s (ffmpeg -f null) | {ra['build_vs_decode_floor_cpu']:.2f}x of floor | |",
        f"| bytes per video | {by['cache'] / 1e6:.2f} MB | {by['torch_save_float32'] / 1e6:.2f} MB (float32 torch.save) | {ra['bytes_vs_torch_save_float32']:.3f} (1/{1 / ra['bytes_vs_torch_save_float32']:.0f}) | <= 1/6 |",
        "",
        "| compression | bytes | ratio | write MB/s | read MB/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c['compression']} | {c['bytes'] / 1e6:.1f} MB | {c['ratio']:.2f} | {c['write_MBps']:.0f} | {c['read_MBps']:.0f} |"
        for c in r["compression"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, _ = parse(BenchConfig, list(sys.argv[1:] if argv is None else argv))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    setup_logging("INFO")
    result_logger().info(format_table(run(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
