"""Deterministic, cost-balanced slices of the global (benchmark, sample) list.

A sample's cost is what it takes to run it: decoding grows with the video's length, the processor and
the model with the number of frames the spec keeps. The length comes from the record when it says so
(a benchmark's ``duration`` hook: Video-MME's duration class, the toy scene, clip bounds in the path),
else from the file size on disk (a rough bitrate), else the benchmark's typical length. Slices are built
by longest-first greedy assignment to the least loaded shard (ties: lowest shard index; samples ordered
by cost, then benchmark and key), so the same inputs always give the same slices.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from typing import Any

from cache_builder.records import media_of_record, resolve
from eval_harness.benchmarks import get_benchmark
from eval_harness.records import BENCH, KEY
from vrl.data.config import VideoBudget
from vrl.data.media import ROOT_KEY

#: bytes per second of a typical benchmark video (≈1 Mbit/s): file size → length when nothing else says
BYTES_PER_SECOND = 125_000
#: cost of one frame relative to one second of decoding, and of the prompt/answer itself
FRAME_COST = 1.0
SECOND_COST = 0.05
BASE_COST = 4.0


def video_seconds(record: dict[str, Any]) -> float:
    """The record's video length in seconds: its fields, else its file size, else the typical length."""
    bench = get_benchmark(record[BENCH])
    if bench.duration is not None:
        seconds = bench.duration(record)
        if seconds:
            return float(seconds)
    items = media_of_record(record)
    if items:
        path = resolve(items[0].path, record.get(ROOT_KEY) or None)
        try:
            size = os.stat(path).st_size
        except OSError:
            return 0.0  # missing: it fails fast (recorded as an error)
        return max(1.0, size / BYTES_PER_SECOND)
    return bench.typical_duration_s


def sample_cost(record: dict[str, Any], video: VideoBudget) -> float:
    """Relative cost of one sample under the frame budget ``video`` (images: one frame)."""
    items = media_of_record(record)
    if items and items[0].kind == "image":
        return BASE_COST + FRAME_COST
    seconds = video_seconds(record)
    if seconds <= 0:
        return 1.0
    frames = min(video.max_frames, max(video.min_frames, seconds * video.fps))
    return BASE_COST + FRAME_COST * frames + SECOND_COST * seconds


def balance(samples: Sequence[tuple[str, str]], costs: Sequence[float], num_shards: int) -> list[list[int]]:
    """Indices of ``samples`` per shard (each list in input order); greedy longest-first, deterministic."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    order = sorted(range(len(samples)), key=lambda i: (-costs[i], samples[i]))
    heap = [(0.0, shard) for shard in range(num_shards)]
    slices: list[list[int]] = [[] for _ in range(num_shards)]
    for i in order:
        load, shard = heapq.heappop(heap)
        slices[shard].append(i)
        heapq.heappush(heap, (load + costs[i], shard))
    return [sorted(s) for s in slices]


def plan_tasks(records: list[dict[str, Any]], num_shards: int, video: VideoBudget) -> list[dict[str, Any]]:
    """Array tasks for ``records`` (those still to run, in benchmark/file order): one per non-empty shard.

    A task is JSON-able: ``{"shard", "num_shards", "samples": [[benchmark, key], ...], "cost"}``.
    """
    samples = [(r[BENCH], r[KEY]) for r in records]
    costs = [sample_cost(r, video) for r in records]
    tasks = []
    for shard, indices in enumerate(balance(samples, costs, num_shards)):
        if indices:
            tasks.append(
                {
                    "shard": shard,
                    "num_shards": num_shards,
                    "samples": [list(samples[i]) for i in indices],
                    "cost": round(sum(costs[i] for i in indices), 3),
                }
            )
    return tasks


def describe(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return "no task: every sample is done"
    costs = [t["cost"] for t in tasks]
    sizes = [len(t["samples"]) for t in tasks]
    return (
        f"{len(tasks)} task(s), {sum(sizes)} samples ({min(sizes)}–{max(sizes)} per task), "
        f"cost {min(costs):.0f}–{max(costs):.0f} per task"
    )
