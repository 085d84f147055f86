"""Training-engine benchmark: ``python -m vrl.engines.benchmark [key=value ...] [--json PATH]``.

Ratios from one run of the FSDP engine (one process) on a batch of video prompts whose lengths spread
like a video RL dataset: frames per prompt log-uniform in ``[min_frames, max_frames]`` (8-64 by default;
datasets sampled at a fixed fps with a frame cap have many short clips and a long tail up to the cap), at
a fixed frame size, one response each of a uniform length in ``[min_response, max_response]`` tokens.
Both contenders take the same trajectories in the same micro-batches (``micro_batch_size`` in order, as
the engine forms them without a token budget); the model, seed and optimizer are the same.

Rows (each a function of :data:`ROWS`):

- ``padding``: tokens the language model computes / real tokens, over the step's micro-batches:
  padded (each micro-batch padded to its longest sequence) vs packed (one row, no padding). Goal: packed
  ≤ 1.02.
- ``update``: seconds of one ``train_step`` (forward, backward, optimizer step), padded vs packed; the two
  engines alternate steps (who goes first rotates) after ``warmup`` untimed steps each, and the median of
  ``steps`` timed steps is compared. Goal: padded / packed ≥ 1.3×. Before timing, both engines' log-probs
  of the batch are compared (printed: packing must not change them).

- ``sp_memory``: peak activation bytes per rank for one training micro-batch (forward, loss, backward) of
  ONE long video prompt (``sp_frames`` frames of ``sp_frame_side`` pixels, ≥ 16k tokens by default) at
  each ``engine.sequence_parallel_size`` S in ``sp_sizes``, run as S gloo processes (one per rank, Ulysses
  attention and sharded vision tower as the engine installs them); ratio = S's peak / S=1's. Goals: ≤ 0.55×
  at S=2, ≤ 0.3× at S=4. Measured with the planner's ``PeakLiveBytes`` (``vrl/planner/peak.py``):
  a ``TorchDispatchMode`` that follows every tensor an operator returns, forward and backward, until its
  storage is freed, and keeps the peak of the bytes alive at once, parameters and accumulated gradients
  excluded, so saved and transient activations (vision tower, all-to-all buffers, attention) count. The
  micro-batch's own tensors (token ids, pixel patches) are excluded as well and reported apart
  (``input_mib``, the largest rank's): as in the engine, each SP rank holds only the pixel patches of
  the frames it encodes (:meth:`vrl.models.vision_reuse.VisionReuse.plan`), the token ids in full. The tiny
  model's activations dominate at this length (its weights are ~4 MB, a 16k-token micro-batch's
  activations over a GB), so no widening is needed; the weights are not part of the number.
- ``sp_frames``: the longest video (frames at the fixed frame size) whose update fits a per-rank cap, at
  each S. Computed, not searched: each rank's peak activations plus its inputs are measured at two
  lengths (``sp_frames`` and half of it) and fitted as ``a_S · frames + b_S``; the model states of FSDP (fp32 weights, gradients and two AdamW
  moments, 16 bytes per parameter, sharded over the S ranks) are added; the cap is ``sp_cap_mb`` (0: S=1's
  measured total at ``sp_frames``, so S=1 fits exactly that video). Frames = (cap − states/S − b_S) / a_S,
  rounded down to whole temporal patches. Goal: ≥ 3.5× the frames of S=1 at S=4.

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

from vrl.benchmark_io import json_flag_argv, write_json
from vrl.config import ConfigError, parse
from vrl.log import get_logger, result_logger, setup_logging

logger = get_logger(__name__)


@dataclass
class EngineBenchmarkConfig:
    model: str = "tiny-qwen2.5-vl"
    """Policy: a registered tiny model or a Hugging Face Qwen-VL folder."""
    rows: list[str] = dataclasses.field(
        default_factory=lambda: ["padding", "update", "sp_memory", "sp_frames"]
    )
    """Rows to run (module docstring): padding, update, sp_memory, sp_frames."""
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
    sp_sizes: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 4])
    """Sequence-parallel sizes of the sp rows (1 first: the reference); each runs as that many processes."""
    sp_frames: int = 512
    """Frames of the sp rows' long video (whole temporal patches of 2)."""
    sp_frame_side: int = 0
    """Frame side of the long video; 0: 8 × the family's resize factor (224 Qwen2.5-VL: 64 tokens per
    2 frames, so 512 frames are ~16.4k tokens)."""
    sp_response: int = 64
    """Response tokens of the long video's trajectory."""
    sp_cap_mb: float = 0.0
    """Per-rank memory cap of the sp_frames row in MiB; 0: S=1's measured total at ``sp_frames``."""
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
        if self.threads < 0 or self.frame_side < 0 or self.sp_frame_side < 0 or self.sp_cap_mb < 0:
            raise ValueError("threads, frame_side, sp_frame_side and sp_cap_mb must be >= 0")
        if not self.sp_sizes or self.sp_sizes[0] != 1 or any(s < 1 for s in self.sp_sizes):
            raise ValueError(f"sp_sizes={self.sp_sizes}: positive sizes, 1 first (the reference)")
        if self.sp_frames < 4 or self.sp_frames % 4 or self.sp_response < 1:
            raise ValueError(
                "need sp_frames a multiple of 4 (its half in whole 2-frame patches), sp_response >= 1"
            )


# ---- workload -----------------------------------------------------------------------------------------
def _video_text(processor: Any) -> str:
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _resize_factor(model_path: Path) -> int:
    from vrl.models.loading import model_family

    return 32 if model_family(model_path) == "qwen3_vl" else 28


def video_trajectory(
    processor: Any, count: int, side: int, seed: int, response: list[int], advantage: float = 1.0
) -> Any:
    """One trajectory of a ``count``-frame video prompt (random ``side`` × ``side`` frames) and ``response``."""
    from cache_builder.processor_inputs import processor_kwargs
    from vrl.batch import VISION_KEYS, Prompt, Trajectory

    text = _video_text(processor)
    pixels = np.random.RandomState(seed).randint(0, 255, (count, 3, side, side), np.uint8)
    meta = {"fps": 2.0, "frames_indices": list(range(count)), "total_num_frames": count}
    out = processor(text=[text], return_tensors="pt", **processor_kwargs(videos=[(pixels, meta)]))
    prompt = Prompt(
        record={},
        input_ids=out["input_ids"][0],
        vision={k: out[k] for k in VISION_KEYS if k in out},
        text=text,
        mm_token_type_ids=out["mm_token_type_ids"][0] if "mm_token_type_ids" in out else None,
    )
    return Trajectory(
        prompt=prompt, response_ids=torch.tensor(response), response_text="", advantage=advantage
    )


def video_trajectories(cfg: EngineBenchmarkConfig, model_path: Path) -> list[Any]:
    """One trajectory per video prompt, built with the model's own processor (random frames)."""
    from vrl.models.loading import load_processor

    processor = load_processor(model_path)
    side = cfg.frame_side or 6 * _resize_factor(model_path)
    rng = random.Random(cfg.seed)
    vocab = processor.tokenizer.vocab_size
    trajs = []
    for i in range(cfg.num_prompts):
        frames = math.exp(rng.uniform(math.log(cfg.min_frames), math.log(cfg.max_frames)))
        count = max(2, round(frames / 2) * 2)  # whole temporal patches of 2 frames
        length = rng.randint(cfg.min_response, cfg.max_response)
        response = [rng.randrange(100, vocab - 1) for _ in range(length)]
        advantage = 1.0 if i % 2 == 0 else -1.0
        trajs.append(video_trajectory(processor, count, side, cfg.seed * 1000 + i, response, advantage))
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
    sp: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Sequence-parallel measurements by S (:func:`sp_measurements`)."""

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


# ---- sequence-parallel rows ----------------------------------------------------------------------------
#: bytes of FSDP model state per parameter: fp32 weight, gradient, AdamW's two moments
STATE_BYTES_PER_PARAM = 16
MIB = 2**20


def _input_tensors(mb: Any, media: dict[str, Any] | None = None) -> list[torch.Tensor]:
    tensors = [v for v in mb.model_inputs().values() if isinstance(v, torch.Tensor)]
    return tensors + [m.pixels for m in (media or {}).values()]


def measure_activations(tool: Any, policy: torch.nn.Module, mb: Any, media: dict[str, Any] | None) -> int:
    """Peak activation bytes of one training micro-batch (``ResponseLogProbs`` forward with the engine's
    planned ``media``, a loss over the response log-probs, backward), as the planner tests'
    ``measure_update`` measures it, except that the micro-batch's own tensors are excluded too: they are
    this rank's input (reported apart), and a slice view of the pixels would otherwise count the whole
    input storage as activation."""
    from contextlib import ExitStack

    policy.train()
    params = list(policy.parameters())
    tracker = tool.PeakLiveBytes(params + _input_tensors(mb, media))
    with ExitStack() as stack:
        handles = [p.register_post_accumulate_grad_hook(lambda p: tracker.exclude(p.grad)) for p in params]
        stack.callback(lambda: [h.remove() for h in handles])
        with tracker:
            logp, _ = policy(mb, media=media)
            loss = -(logp * mb.token_mask).sum() / mb.token_mask.sum()
            loss.backward()
    return int(tracker.peak)


def sp_worker(
    model: str, sp: int, frames: list[int], side: int, response: int, threads: int, out: str
) -> None:
    """One rank of the sp rows (``RANK``/``WORLD_SIZE`` from the environment, world = S): the model with
    Ulysses attention and a sharded vision tower as the engine installs them, one micro-batch per length
    in ``frames`` whose pixels this rank receives only for the frames it encodes (the engine's media
    plan); rank 0 writes every rank's peak activation and input bytes as JSON."""
    import torch.distributed as dist

    from vrl.batch import collate
    from vrl.distributed import init_distributed, shutdown
    from vrl.engines.sequence_parallel import parallelize_sequence
    from vrl.engines.vision_sharding import local_patch_range
    from vrl.models.loading import load_hf_model, load_processor
    from vrl.models.policy import ResponseLogProbs

    if threads:
        torch.set_num_threads(threads)
    from vrl.planner import peak as tool

    ctx = init_distributed(sequence_parallel=sp)
    path = Path(model)
    torch.manual_seed(0)
    m = load_hf_model(path, dtype=torch.float32, device=ctx.device)
    m.set_attn_implementation("sdpa")
    if sp > 1:
        parallelize_sequence(m, ctx)
    policy = ResponseLogProbs(m)
    split = (lambda grid: local_patch_range(grid, sp, ctx.sp_rank)) if sp > 1 else None
    pad_id = int(m.config.get_text_config().pad_token_id or 0)
    processor = load_processor(path)
    ids = [100 + (7 * i) % 1000 for i in range(response)]
    result: dict[str, Any] = {"sp": sp, "params": sum(p.numel() for p in m.parameters()), "runs": []}
    for count in frames:
        traj = video_trajectory(processor, count, side, 0, ids)
        mb = collate([traj], pad_id)
        media = policy.vision_reuse.plan(mb.vision, [traj.prompt], split)  # pops the full pixels
        tokens = int(mb.input_ids.shape[1])
        wall = time.perf_counter()
        peak = measure_activations(tool, policy, mb, media)
        m.zero_grad(set_to_none=True)
        inputs = sum(t.untyped_storage().nbytes() for t in _input_tensors(mb, media))
        per_rank: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(per_rank, (peak, inputs))
        result["runs"].append(
            {
                "frames": count,
                "tokens": tokens,
                "peak_bytes": [p for p, _ in per_rank],
                "input_bytes_per_rank": [i for _, i in per_rank],
                "input_bytes": max(i for _, i in per_rank),
                "seconds": time.perf_counter() - wall,
            }
        )
        del traj, mb, media
        logger.info("S=%d, %d frames (%d tokens): peak %.1f MiB on rank 0", sp, count, tokens, peak / MIB)
    if ctx.is_main:
        Path(out).write_text(json.dumps(result))
    shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch_sp(w: Workload, sp: int, frames: list[int], out: Path) -> dict[str, Any]:
    import subprocess

    cfg = w.cfg
    side = cfg.sp_frame_side or 8 * _resize_factor(w.model_path)
    port = _free_port()
    procs = []
    for rank in range(sp):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(sp),
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(sp),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        args = [str(w.model_path), str(sp), json.dumps(frames), str(side), str(cfg.sp_response)]
        cmd = [
            sys.executable,
            "-m",
            "vrl.engines.benchmark",
            "--sp-worker",
            *args,
            str(cfg.threads),
            str(out),
        ]
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))
    try:
        codes = [p.wait(timeout=3600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if codes != [0] * sp:
        raise RuntimeError(f"sp benchmark ranks (S={sp}) exited with {codes}")
    return {**json.loads(out.read_text()), "frame_side": side}


def sp_measurements(w: Workload) -> dict[int, dict[str, Any]]:
    """Per S: every rank's peak activation bytes at ``sp_frames`` and at half of it (measured once)."""
    if not w.sp:
        import tempfile

        frames = [w.cfg.sp_frames, w.cfg.sp_frames // 2]
        with tempfile.TemporaryDirectory() as tmp:
            for sp in w.cfg.sp_sizes:
                w.sp[sp] = _launch_sp(w, sp, frames, Path(tmp) / f"sp{sp}.json")
    return w.sp


def sp_memory_row(w: Workload) -> dict[str, Any]:
    meas = sp_measurements(w)
    long = {sp: m["runs"][0] for sp, m in meas.items()}
    peak = {sp: max(r["peak_bytes"]) / MIB for sp, r in long.items()}
    ratio = {sp: peak[sp] / peak[1] for sp in peak}
    goals = {2: 0.55, 4: 0.3}
    met = all(ratio[sp] <= g for sp, g in goals.items() if sp in ratio)
    return {
        "row": "sp_memory",
        "title": f"peak activation MiB per rank, one {long[1]['frames']}-frame video ({long[1]['tokens']} tokens)",
        "contenders": {f"S={sp}": v for sp, v in peak.items()},
        "per_rank_mib": {f"S={sp}": [b / MIB for b in r["peak_bytes"]] for sp, r in long.items()},
        "seconds": {f"S={sp}": r["seconds"] for sp, r in long.items()},
        "input_mib": {f"S={sp}": r["input_bytes"] / MIB for sp, r in long.items()},
        "unit": " MiB",
        "ratio": {"label": "vs S=1", "values": {f"S={sp}": v for sp, v in ratio.items()}},
        "goal": "≤ 0.55× at S=2, ≤ 0.3× at S=4",
        "met": met,
    }


def _rank_total(run: dict[str, Any]) -> int:
    """The largest rank's activation peak plus its own inputs."""
    inputs = run.get("input_bytes_per_rank") or [run["input_bytes"]] * len(run["peak_bytes"])
    return max(p + i for p, i in zip(run["peak_bytes"], inputs, strict=True))


def sp_frames_row(w: Workload) -> dict[str, Any]:
    meas = sp_measurements(w)
    params = meas[1]["params"]
    fit, states = {}, {}
    for sp, m in meas.items():
        hi, lo = ({"frames": r["frames"], "bytes": _rank_total(r)} for r in m["runs"])
        slope = (hi["bytes"] - lo["bytes"]) / (hi["frames"] - lo["frames"])
        if slope <= 0:
            raise RuntimeError(f"S={sp}: the peak did not grow from {lo['frames']} to {hi['frames']} frames")
        fit[sp] = (slope, hi["bytes"] - slope * hi["frames"])
        states[sp] = STATE_BYTES_PER_PARAM * params / sp
    top = meas[1]["runs"][0]
    cap = w.cfg.sp_cap_mb * MIB or _rank_total(top) + states[1]
    # + 1e-6: S=1 at the default cap lands on sp_frames up to float rounding
    frames = {sp: int(((cap - states[sp] - b) / a + 1e-6) // 2 * 2) for sp, (a, b) in fit.items()}
    ratio = {sp: frames[sp] / frames[1] for sp in frames}
    return {
        "row": "sp_frames",
        "title": f"longest video (frames of {meas[1]['frame_side']}²) under a {cap / MIB:.0f} MiB per-rank cap",
        "contenders": {f"S={sp}": v for sp, v in frames.items()},
        "fit_bytes_per_frame": {f"S={sp}": a for sp, (a, _) in fit.items()},
        "fit_constant_bytes": {f"S={sp}": b for sp, (_, b) in fit.items()},
        "model_state_bytes": {f"S={sp}": v for sp, v in states.items()},
        "cap_bytes": cap,
        "unit": "",
        "ratio": {"label": "vs S=1", "values": {f"S={sp}": v for sp, v in ratio.items()}},
        "goal": "≥ 3.5× at S=4",
        "met": ratio.get(4, 0.0) >= 3.5 if 4 in ratio else False,
    }


#: row name -> function of the workload returning one result row
ROWS: dict[str, Callable[[Workload], dict[str, Any]]] = {
    "padding": padding_row,
    "update": update_row,
    "sp_memory": sp_memory_row,
    "sp_frames": sp_frames_row,
}
#: rows that use the batch of video prompts (the sp rows build their own long video in each rank)
BATCH_ROWS = ("padding", "update")


# ---- report -----------------------------------------------------------------------------------------------
def markdown(cfg: EngineBenchmarkConfig, w: Workload, rows: list[dict[str, Any]], load: tuple) -> str:
    lines = [
        f"Engine benchmark: {cfg.model}; torch threads {cfg.threads or 'default'}, {os.cpu_count()} CPUs, "
        f"1-min load average {load[0]:.1f} → {load[1]:.1f}."
    ]
    batch = [r for r in rows if r["row"] in BATCH_ROWS]
    if batch:
        frames = [int(t.prompt.vision["video_grid_thw"][0, 0]) * 2 for t in w.trajs]
        lengths = [t.prompt.input_ids.numel() + t.response_len for t in w.trajs]
        lines += [
            "",
            f"Packing: {cfg.num_prompts} video prompts of {min(frames)}-{max(frames)} frames (log-uniform "
            f"{cfg.min_frames}-{cfg.max_frames}), sequences of {min(lengths)}-{max(lengths)} tokens, "
            f"micro_batch_size={cfg.micro_batch_size}.",
            "",
            "| row | padded | packed | ratio (CPU-time ratio) | goal | met |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
    for r in batch:
        c, unit = r["contenders"], r["unit"]
        q = r["ratio"]
        cpu = f" ({q['cpu']:.2f}×)" if "cpu" in q else ""
        lines.append(
            f"| {r['title']} | {c['padded']:.3f}{unit} | {c['packed']:.3f}{unit} | "
            f"{q['label']} {q['value']:.2f}×{cpu} | {r['goal']} | {'yes' if r['met'] else 'no'} |"
        )
    for r in batch:
        if "logprob_max_abs_diff" in r:
            lines += [
                "",
                f"Packed vs padded log-probs before timing: max |Δ| = {r['logprob_max_abs_diff']:.1e}.",
            ]
    sp_rows = [r for r in rows if r["row"] not in BATCH_ROWS]
    if sp_rows:
        sizes = [f"S={sp}" for sp in cfg.sp_sizes]
        lines += [
            "",
            "Sequence parallelism (S gloo processes, one long video, one micro-batch forward + backward):",
            "",
            f"| row | {' | '.join(sizes)} | ratio vs S=1 | goal | met |",
            "| --- |" + " --- |" * (len(sizes) + 3),
        ]
        for r in sp_rows:
            c, q = r["contenders"], r["ratio"]["values"]
            cells = " | ".join(f"{c[k]:.1f}{r['unit']}" if r["unit"] else f"{c[k]}" for k in sizes)
            ratios = ", ".join(f"{k} {q[k]:.2f}×" for k in sizes[1:])
            lines.append(
                f"| {r['title']} | {cells} | {ratios} | {r['goal']} | {'yes' if r['met'] else 'no'} |"
            )
        for r in sp_rows:
            if "input_mib" in r:
                held = ", ".join(f"{k} {v:.1f}" for k, v in r["input_mib"].items())
                lines += [
                    "",
                    f"Inputs per rank (token ids in full, the pixel patches of the frames the rank encodes), "
                    f"not counted above: {held} MiB; the frames row counts them.",
                ]
    return "\n".join(lines) + "\n"


def run(cfg: EngineBenchmarkConfig) -> dict[str, Any]:
    from vrl.models.tiny import resolve_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    start_load = os.getloadavg()[0]
    model_path = resolve_model(cfg.model)
    batch = any(r in BATCH_ROWS for r in cfg.rows)
    workload = Workload(cfg, model_path, video_trajectories(cfg, model_path) if batch else [])
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
        write_json(cfg.json, doc)
    return doc


def main(argv: Sequence[str]) -> int:
    setup_logging("INFO")
    if argv and argv[0] == "--sp-worker":  # one rank of the sp rows, launched by _launch_sp
        model, sp, frames, side, response, threads, out = argv[1:8]
        sp_worker(model, int(sp), json.loads(frames), int(side), int(response), int(threads), out)
        return 0
    try:
        cfg, _ = parse(EngineBenchmarkConfig, json_flag_argv(argv))
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
