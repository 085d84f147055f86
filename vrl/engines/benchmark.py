"""Training-engine benchmark: ``python -m vrl.engines.benchmark [key=value ...] [--json PATH]``.

Ratios from one run of the FSDP engine (one process) on a batch of video prompts whose lengths spread
like a video RL dataset: frames per prompt log-uniform in ``[min_frames, max_frames]`` (8-64 by default;
datasets sampled at a fixed fps with a frame cap have many short clips and a long tail up to the cap), at
a fixed frame size, one response each of a uniform length in ``[min_response, max_response]`` tokens.
Both contenders take the same trajectories in the same micro-batches (``micro_batch_size`` in order, as
the engine forms them without a token budget); the model, seed and optimizer are the same.

Rows (each a function of :data:`ROWS`; more rows, e.g. sequence-parallel memory, plug in the same way):

- ``padding``: tokens the language model computes / real tokens, over the step's micro-batches:
  padded (each micro-batch padded to its longest sequence) vs packed (one row, no padding). Goal: packed
  ≤ 1.02.
- ``update``: seconds of one ``train_step`` (forward, backward, optimizer step), padded vs packed; the two
  engines alternate steps (who goes first rotates) after ``warmup`` untimed steps each, and the median of
  ``steps`` timed steps is compared. Goal: padded / packed ≥ 1.3×. Before timing, both engines' log-probs
  of the batch are compared (printed: packing must not change them).

One torch thread by default (``threads``): on a shared, loaded machine a starved multi-threaded process
spins in idle threads and step times vary several-fold. The update row also gives the ratio of process
CPU seconds, which a loaded machine disturbs less than wall seconds. The markdown table goes to stdout (the project's
result channel); ``--json PATH`` also writes it with every number.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vrl.config import ConfigError, parse
from vrl.log import get_logger, result_logger, setup_logging

logger = get_logger(__name__)


@dataclass
class EngineBenchmarkConfig:
    model: str = "tiny-qwen2.5-vl"
    """Policy: a registered tiny model or a Hugging Face Qwen-VL folder."""
    rows: list[str] = dataclasses.field(default_factory=lambda: ["padding", "update"])
    """Rows to run (module docstring): padding, update."""
    num_prompts: int = 16
    """Video prompts in the batch (one trajectory each)."""
    min_frames: int = 8
    """Fewest frames of a prompt's video."""
    max_frames: int = 64
    """Most frames of a prompt's video."""
    frame_side: int = 0
    """Square frame side in pixels; 0: 6 × the family's resize factor (168 Qwen2.5-VL, 192 Qwen3-VL)."""
    min_response: int = 32
    """Shortest response, tokens."""
    max_response: int = 128
    """Longest response, tokens."""
    micro_batch_size: int = 4
    """Trajectories per forward/backward pass, both contenders."""
    steps: int = 3
    """Timed update steps per contender."""
    warmup: int = 1
    """Untimed update steps per contender before timing."""
    threads: int = 1
    """Torch threads (0: torch's default)."""
    seed: int = 0
    """Seed of the frame counts, frames and responses."""
    json: str = ""
    """Also write the numbers and the table to this JSON file (``--json PATH`` works too)."""

    def validate(self) -> None:
        unknown = sorted(set(self.rows) - set(ROWS))
        if unknown or not self.rows:
            raise ValueError(f"rows={self.rows}: choose from {', '.join(ROWS)}")
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError("need 2 <= min_frames <= max_frames")
        if not 1 <= self.min_response <= self.max_response:
            raise ValueError("need 1 <= min_response <= max_response")
        if self.num_prompts < 1 or self.micro_batch_size < 1 or self.steps < 1 or self.warmup < 0:
            raise ValueError("need num_prompts, micro_batch_size, steps >= 1 and warmup >= 0")
        if self.threads < 0 or self.frame_side < 0:
            raise ValueError("threads and frame_side must be >= 0")


# ---- workload -----------------------------------------------------------------------------------------
def video_trajectories(cfg: EngineBenchmarkConfig, model_path: Path) -> list[Any]:
    """One trajectory per video prompt, built with the model's own processor (random frames)."""
    from cache_builder.processor_inputs import processor_kwargs
    from vrl.batch import VISION_KEYS, Prompt, Trajectory
    from vrl.models.loading import load_processor, model_family

    processor = load_processor(model_path)
    factor = 32 if model_family(model_path) == "qwen3_vl" else 28
    side = cfg.frame_side or 6 * factor
    rng = random.Random(cfg.seed)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    vocab = processor.tokenizer.vocab_size
    trajs = []
    for i in range(cfg.num_prompts):
        frames = math.exp(rng.uniform(math.log(cfg.min_frames), math.log(cfg.max_frames)))
        count = max(2, round(frames / 2) * 2)  # whole temporal patches of 2 frames
        pixels = np.random.RandomState(cfg.seed * 1000 + i).randint(0, 255, (count, 3, side, side), np.uint8)
        meta = {"fps": 2.0, "frames_indices": list(range(count)), "total_num_frames": count}
        out = processor(text=[text], return_tensors="pt", **processor_kwargs(videos=[(pixels, meta)]))
        prompt = Prompt(
            record={},
            input_ids=out["input_ids"][0],
            vision={k: out[k] for k in VISION_KEYS if k in out},
            text=text,
            mm_token_type_ids=out["mm_token_type_ids"][0] if "mm_token_type_ids" in out else None,
        )
        length = rng.randint(cfg.min_response, cfg.max_response)
        response = torch.tensor([rng.randrange(100, vocab - 1) for _ in range(length)])
        advantage = 1.0 if i % 2 == 0 else -1.0
        trajs.append(Trajectory(prompt=prompt, response_ids=response, response_text="", advantage=advantage))
    return trajs


def _engine(cfg: EngineBenchmarkConfig, model_path: Path, packing: bool) -> Any:
    from vrl.distributed import init_distributed
    from vrl.engines.config import EngineConfig
    from vrl.engines.fsdp import FSDPEngine

    engine_cfg = EngineConfig(lr=1e-5, micro_batch_size=cfg.micro_batch_size, packing=packing)
    return FSDPEngine(engine_cfg, model_path, init_distributed(), total_steps=cfg.warmup + cfg.steps + 1)


@dataclass
class Workload:
    cfg: EngineBenchmarkConfig
    model_path: Path
    trajs: list[Any]
    engines: dict[str, Any] = dataclasses.field(default_factory=dict)

    def engine(self, name: str) -> Any:
        """The ``padded`` or ``packed`` engine, built on first use."""
        if name not in self.engines:
            self.engines[name] = _engine(self.cfg, self.model_path, packing=name == "packed")
        return self.engines[name]

    def micro_batches(self) -> list[list[Any]]:
        size = self.cfg.micro_batch_size
        return [self.trajs[i : i + size] for i in range(0, len(self.trajs), size)]


# ---- rows -----------------------------------------------------------------------------------------------
def padding_row(w: Workload) -> dict[str, Any]:
    from vrl.batch import collate
    from vrl.engines.packing import computed_tokens, pack

    real = sum(t.prompt.input_ids.numel() + t.response_len for t in w.trajs)
    padded = sum(computed_tokens(collate(mb, 0)) for mb in w.micro_batches())
    packed = sum(computed_tokens(pack(mb, 0)) for mb in w.micro_batches())
    return {
        "row": "padding",
        "title": "tokens computed / real tokens",
        "real_tokens": real,
        "contenders": {"padded": padded / real, "packed": packed / real},
        "unit": "×",
        "ratio": {"label": "packed", "value": packed / real},
        "goal": "packed ≤ 1.02",
        "met": packed / real <= 1.02,
    }


def update_row(w: Workload) -> dict[str, Any]:
    from vrl.algorithms.config import AlgorithmConfig
    from vrl.distributed import init_distributed
    from vrl.trainer.mixing import MixConfig
    from vrl.trainer.update import make_loss_fn

    names = ["padded", "packed"]
    logp = {n: w.engine(n).compute_logprobs(w.trajs).logp for n in names}
    parity = max(float((a - b).abs().max()) for a, b in zip(logp["padded"], logp["packed"], strict=True))
    ctx = init_distributed()
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for step in range(w.cfg.warmup + w.cfg.steps):
        for name in names if step % 2 == 0 else names[::-1]:
            loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), w.trajs, ctx, on_policy=True)
            wall, proc = time.perf_counter(), time.process_time()
            w.engine(name).train_step(w.trajs, loss_fn, need_entropy=False)
            if step >= w.cfg.warmup:
                times[name].append(time.perf_counter() - wall)
                cpu[name].append(time.process_time() - proc)
            logger.info("%s update %d: %.2f s", name, step, time.perf_counter() - wall)
    median = {n: statistics.median(times[n]) for n in names}
    cpu_median = {n: statistics.median(cpu[n]) for n in names}
    ratio = median["padded"] / median["packed"]
    return {
        "row": "update",
        "title": "update seconds (median)",
        "contenders": median,
        "all_s": times,
        "cpu_s": cpu_median,
        "unit": "s",
        "ratio": {
            "label": "padded / packed",
            "value": ratio,
            "cpu": cpu_median["padded"] / cpu_median["packed"],
        },
        "goal": "≥ 1.3×",
        "met": ratio >= 1.3,
        "logprob_max_abs_diff": parity,
    }


#: row name -> function of the workload returning one result row
ROWS: dict[str, Callable[[Workload], dict[str, Any]]] = {"padding": padding_row, "update": update_row}


# ---- report -----------------------------------------------------------------------------------------------
def markdown(cfg: EngineBenchmarkConfig, w: Workload, rows: list[dict[str, Any]], load: tuple) -> str:
    frames = [int(t.prompt.vision["video_grid_thw"][0, 0]) * 2 for t in w.trajs]
    lengths = [t.prompt.input_ids.numel() + t.response_len for t in w.trajs]
    lines = [
        f"Engine benchmark: {cfg.model}, {cfg.num_prompts} video prompts of {min(frames)}-{max(frames)} frames "
        f"(log-uniform {cfg.min_frames}-{cfg.max_frames}), sequences of {min(lengths)}-{max(lengths)} tokens, "
        f"micro_batch_size={cfg.micro_batch_size}; torch threads {cfg.threads or 'default'}, "
        f"{os.cpu_count()} CPUs, 1-min load average {load[0]:.1f} → {load[1]:.1f}.",
        "",
        "| row | padded | packed | ratio (CPU-time ratio) | goal | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        c, unit = r["contenders"], r["unit"]
        q = r["ratio"]
        cpu = f" ({q['cpu']:.2f}×)" if "cpu" in q else ""
        lines.append(
            f"| {r['title']} | {c['padded']:.3f}{unit} | {c['packed']:.3f}{unit} | "
            f"{q['label']} {q['value']:.2f}×{cpu} | {r['goal']} | {'yes' if r['met'] else 'no'} |"
        )
    for r in rows:
        if "logprob_max_abs_diff" in r:
            lines += [
                "",
                f"Packed vs padded log-probs before timing: max |Δ| = {r['logprob_max_abs_diff']:.1e}.",
            ]
    return "\n".join(lines) + "\n"


def run(cfg: EngineBenchmarkConfig) -> dict[str, Any]:
    from vrl.models.tiny import resolve_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    start_load = os.getloadavg()[0]
    model_path = resolve_model(cfg.model)
    workload = Workload(cfg, model_path, video_trajectories(cfg, model_path))
    rows = [ROWS[name](workload) for name in cfg.rows]
    load = (start_load, os.getloadavg()[0])
    table = markdown(cfg, workload, rows, load)
    doc = {
        "config": dataclasses.asdict(cfg),
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": list(load)},
        "rows": rows,
        "table": table,
    }
    if cfg.json:
        out = Path(cfg.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(out)
    return doc


def _argv(argv: Sequence[str]) -> list[str]:
    """``--json PATH`` / ``--json=PATH`` as ``json=PATH``; everything else is key=value."""
    out, args = [], list(argv)
    while args:
        a = args.pop(0)
        if a == "--json" and args:
            out.append(f"json={args.pop(0)}")
        elif a.startswith("--json="):
            out.append(f"json={a.split('=', 1)[1]}")
        else:
            out.append(a)
    return out


def main(argv: Sequence[str]) -> int:
    setup_logging("INFO")
    try:
        cfg, _ = parse(EngineBenchmarkConfig, _argv(argv))
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
