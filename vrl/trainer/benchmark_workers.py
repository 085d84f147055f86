"""The contenders of ``python -m vrl.trainer.benchmark``, each in its own process, stepped on command.

Why processes: every contender gets the same fresh interpreter (threads, RNG, no state left by another
trainer, its own torch.distributed group or none), vLLM gets the spawn-safe process it needs, and the
driver can alternate single steps between contenders so a load change on the shared machine hits all of
them alike. Protocol on a ``multiprocessing`` pipe: the worker builds everything (untimed), sends
``{"ready": ...}``, then for every ``"step"`` it receives runs exactly one training step and sends that
step's measurements; ``"stop"`` ends it. A worker that fails dies with its traceback on stderr; the
driver notices the dead process.

Measurements per step: wall seconds, CPU seconds of the worker and all its descendants (ffmpeg decoders,
the vLLM engine core: robust to how busy the shared machine is), generated tokens and phase times.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from vrl.log import get_logger, setup_logging

logger = get_logger(__name__)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, its reaped children and its live descendants."""
    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # exited between listing and reading: its time lands in children_* once reaped
        total += t.user + t.system
    return total


class _Clock:
    """Accumulated seconds spent inside one wrapped callable (e.g. prompt building, generate)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def _start(threads: int) -> None:
    """Common worker set-up: torch threads, quiet stdout, logging."""
    if threads:
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)  # inherited by the vLLM engine core
        torch.set_num_threads(threads)
    os.dup2(2, 1)  # libraries print to stdout (TRL's final metrics, vLLM): keep it for the driver's table
    setup_logging("WARNING")


def _train_config(overrides: list[str]) -> Any:
    from vrl.config import parse
    from vrl.trainer.config import Config

    cfg, _ = parse(Config, overrides)
    return cfg


# ---- ours: vrl.trainer.loop.Trainer ----------------------------------------------------------------------
def ours_worker(conn: Connection, overrides: list[str], run_dir: str, threads: int) -> None:
    """One :class:`~vrl.trainer.loop.Trainer` built like ``stage=train`` would, stepped by the driver."""
    _start(threads)
    from vrl.distributed import init_distributed, shutdown
    from vrl.models.loading import model_family
    from vrl.models.tiny import resolve_model
    from vrl.trainer.loop import Trainer
    from vrl.trainer.stage import prepare_data

    cfg = _train_config(overrides)
    dist_ctx = init_distributed()
    model_path = resolve_model(cfg.model)
    train, _, cache_dirs = prepare_data(cfg, dist_ctx, model_family(model_path))
    trainer = Trainer(cfg, Path(run_dir), dist_ctx, model_path, train, [], cache_dirs)
    prompts = _Clock()
    trainer.builder.build = prompts.wrap(trainer.builder.build)  # media load + processor, inside "rollout"
    conn.send({"ready": True, "records": len(train), "cache_dirs": cache_dirs})
    while conn.recv() == "step":
        media_before = dict(trainer.builder.media.counts)
        prompts.seconds = 0.0
        cpu0, start = cpu_seconds(), time.perf_counter()
        metrics = trainer.train_step()
        trainer.step += 1
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
        media = {k: v - media_before.get(k, 0) for k, v in trainer.builder.media.counts.items()}
        phases = {k[len("time/") : -len("_s")]: v for k, v in metrics.items() if k.startswith("time/")}
        phases["prompts"] = prompts.seconds
        phases["generate"] = phases.pop("rollout", 0.0) - prompts.seconds
        conn.send(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "phases": phases,
                "tokens": metrics["perf/tokens_per_s"] * metrics["perf/step_s"],
                "trajectories": metrics["batch/trajectories"],
                "response_len": metrics["response/length_mean"],
                "reward": metrics.get("reward/overall", 0.0),
                "skipped": metrics["batch/skipped_records"],
                "media": media,
            }
        )
    trainer.rollout.close()
    shutdown()


# ---- the peer: TRL's GRPOTrainer -------------------------------------------------------------------------
def trl_settings(cfg: Any, output_dir: str) -> dict[str, Any]:
    """``GRPOConfig`` keyword arguments derived from our train config, so both run the same recipe.

    One optimizer step per step over all ``rollout_batch_size × n`` completions in one forward/backward
    pass and one generate call; token-mean (``dapo``) loss with our clip range, group-std advantages, no
    KL, fp32 on CPU, same optimizer, learning rate, clipping, seed and data order.
    """
    completions = cfg.trainer.rollout_batch_size * cfg.rollout.n
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": completions,
        "gradient_accumulation_steps": 1,
        "num_generations": cfg.rollout.n,
        "max_completion_length": cfg.rollout.max_response_length,
        "temperature": cfg.rollout.temperature,
        "top_p": cfg.rollout.top_p,
        "top_k": cfg.rollout.top_k,
        "learning_rate": cfg.engine.lr,
        "weight_decay": cfg.engine.weight_decay,
        "adam_beta1": cfg.engine.betas[0],
        "adam_beta2": cfg.engine.betas[1],
        "max_grad_norm": cfg.engine.grad_clip,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "loss_type": "dapo",
        "epsilon": cfg.algorithm.clip_low,
        "epsilon_high": cfg.algorithm.clip_high,
        "scale_rewards": "group",
        "beta": 0.0,
        "num_iterations": cfg.trainer.ppo_epochs,
        "seed": cfg.trainer.seed,
        "shuffle_dataset": cfg.data.shuffle,
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": cfg.engine.gradient_checkpointing,
        "logging_steps": 10**9,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def _trl_dataset(records: list[dict[str, Any]], style: str) -> Any:
    """Conversational prompts (our prompt text), the image file (decoded by ``datasets`` on access, as in a
    typical TRL setup) and the record for the reward. TRL's GRPOTrainer takes images only, no video."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    from cache_builder.records import media_of_record, resolve
    from vrl.data.media import ROOT_KEY
    from vrl.data.prompts import user_text

    rows: dict[str, list] = {"prompt": [], "image": [], "record": []}
    for r in records:
        items = media_of_record(r)
        if len(items) != 1 or items[0].kind != "image":
            raise ValueError(
                f"record {r.get('problem_id')} is not a single-image record: TRL's GRPOTrainer (1.16) takes "
                "images only; use image toy families for the TRL comparison"
            )
        rows["prompt"].append([{"role": "user", "content": user_text(r, style)}])
        rows["image"].append(str(resolve(items[0].path, r.get(ROOT_KEY) or None)))
        rows["record"].append(json.dumps({k: v for k, v in r.items() if k != ROOT_KEY}))
    return Dataset.from_dict(rows).cast_column("image", ImageFeature())


def _reward_fn(reward_cfg: Any) -> Callable[..., list[float]]:
    """TRL reward function scoring with :func:`vrl.rewards.score` (``overall``, as our trainer uses)."""
    from vrl.rewards import score

    def vrl_reward(prompts: list, completions: list, record: list[str], **_: Any) -> list[float]:
        out = []
        for completion, rec in zip(completions, record):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            out.append(float(score(json.loads(rec), text, reward_cfg)["overall"]))
        return out

    return vrl_reward


def _step_gate(conn: Connection, generate: _Clock) -> Any:
    from transformers import TrainerCallback

    class StepGate(TrainerCallback):
        """Blocks at the end of every optimizer step until the driver asks for the next one, so a TRL step
        is timed from that request to its ``on_step_end`` (data loading and logging included)."""

        def __init__(self) -> None:
            self.trainer: Any = None
            self.tokens = 0

        def wait(self) -> bool:
            command = conn.recv()
            generate.seconds = 0.0
            self.cpu0, self.start = cpu_seconds(), time.perf_counter()
            return command == "step"

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter() - self.start, cpu_seconds() - self.cpu0
            metrics = self.trainer._metrics["train"]
            conn.send(
                {
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "phases": {"generate": generate.seconds, "other": wall - generate.seconds},
                    "tokens": float(state.num_input_tokens_seen - self.tokens),
                    "trajectories": float(args.per_device_train_batch_size),
                    "response_len": metrics["completions/mean_length"][-1],
                    "reward": metrics["reward"][-1] if metrics.get("reward") else 0.0,
                }
            )
            self.tokens = state.num_input_tokens_seen
            if not self.wait():
                control.should_training_stop = True
            return control

    return StepGate()


def trl_worker(conn: Connection, overrides: list[str], run_dir: str, threads: int) -> None:
    """TRL's ``GRPOTrainer`` on the same model, records and recipe as ``ours_worker``, HF generation."""
    _start(threads)
    from trl import GRPOConfig, GRPOTrainer

    from vrl.data.records import load_files
    from vrl.models.loading import load_hf_model, load_processor
    from vrl.models.tiny import resolve_model
    from vrl.toy.suite import ensure_toy_suite

    cfg = _train_config(overrides)
    files = list(cfg.data.train_files) or [str(ensure_toy_suite(cfg.toy) / "train.jsonl")]
    train = load_files(files, cfg.data.media_root, cfg.data.problem_types)
    if cfg.data.max_train_records:
        train = train[: cfg.data.max_train_records]
    model_path = resolve_model(cfg.model)
    model = load_hf_model(model_path)
    generate = _Clock()
    model.generate = generate.wrap(model.generate)
    gate = _step_gate(conn, generate)
    processor = load_processor(model_path)
    # TRL left-pads prompt ids itself but takes the loss pass's mm_token_type_ids from the processor's own
    # padding: with images of different sizes in a batch both must be left-padded (tiny tokenizer: right)
    processor.tokenizer.padding_side = "left"
    # max_steps only bounds the loop: the driver decides when to stop
    args = GRPOConfig(**trl_settings(cfg, str(Path(run_dir) / "trl")), max_steps=10**6)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[_reward_fn(cfg.reward)],
        args=args,
        train_dataset=_trl_dataset(train, cfg.data.prompt_style),
        processing_class=processor,
        callbacks=[gate],
    )
    gate.trainer = trainer
    conn.send({"ready": True, "records": len(train), "cache_dirs": []})
    if gate.wait():
        trainer.train()
