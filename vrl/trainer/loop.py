"""The RL training loop. It orchestrates; the math lives in vrl.algorithms, the phases in their modules.

One step: prompts → rollout groups (mixing, dynamic sampling) → advantages → log-probs → optimizer
step(s) → weights into the rollout engine → one metrics line. With ``trainer.async_rollout`` the next
step's groups are generated during this step's update (:mod:`vrl.trainer.async_rollout`). Checkpoints
are periodic and atomic; a restarted job resumes from the latest complete one and repeats exactly what
the killed job would have done (seeded sampling per step, sampler position and RNG restored, the batch
generated ahead saved with the checkpoint).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from vrl import device
from vrl.batch import Prompt, Trajectory
from vrl.config import UserError, to_dict
from vrl.data.media import MediaSource, specs_for
from vrl.data.processing import PromptBuilder
from vrl.data.sampler import PromptSampler
from vrl.distributed import DistContext
from vrl.log import get_logger
from vrl.metrics import MetricLogger, build_metric_logger
from vrl.models.loading import load_processor, model_family
from vrl.rewards import load_extra_modules
from vrl.rollout.base import SamplingParams
from vrl.rollout.sync import sync_weights
from vrl.trainer import checkpoint as ckpt
from vrl.trainer import report, resume
from vrl.trainer.async_rollout import AsyncRollout, ReadyBatch, batch_from_state, batch_to_state
from vrl.trainer.collect import CollectResult, collect
from vrl.trainer.components import build_engine, build_rollout, needs_old_logprobs, num_updates
from vrl.trainer.config import Config
from vrl.trainer.run_report import RunReport
from vrl.trainer.scoring import response_metrics, reward_metrics
from vrl.trainer.update import assign_advantages, make_kl_controller, optimize, step_kl_controller
from vrl.trainer.validation import validate
from vrl.trainer.warmstart import nll_loss_fn

logger = get_logger(__name__)


class PhaseTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str):
        device.synchronize()
        start = time.perf_counter()
        yield
        device.synchronize()
        self.seconds[name] += time.perf_counter() - start


class Trainer:
    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        dist_ctx: DistContext,
        model_path: Path,
        train_records: list[dict[str, Any]],
        val_records: list[dict[str, Any]],
        cache_dirs: list[str],
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.dist = dist_ctx
        self.model_path = model_path
        self.train_records = train_records
        self.val_records = val_records
        load_extra_modules(cfg.reward.extra_modules)
        device.seed_everything(cfg.trainer.seed)
        self.processor = load_processor(model_path, uint8_patches=cfg.data.uint8_video_patches)
        family = model_family(model_path)
        video_spec, image_spec = specs_for(cfg.data, family)
        media = MediaSource(
            cfg.data.video_source, cache_dirs, video_spec, image_spec, cfg.data.allow_outside_root
        )
        self.builder = PromptBuilder(self.processor, media, cfg.data.prompt_style, cfg.data.max_prompt_length)
        self.sampler = PromptSampler(
            len(train_records), cfg.trainer.rollout_batch_size, cfg.trainer.seed, cfg.data.shuffle
        )
        self.engine = build_engine(cfg, model_path, dist_ctx)
        self.rollout = build_rollout(cfg, model_path, dist_ctx, self.run_dir)
        self.eos_id = self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        with_offline = [i for i, r in enumerate(train_records) if r.get("offline_output")]
        self.sft_records = with_offline
        self.sft_sampler = (
            PromptSampler(len(with_offline), cfg.warmup.batch_size, cfg.trainer.seed + 1)
            if with_offline
            else None
        )
        self.step = 0
        self.sft_step = 0
        self.kl_ctrl = make_kl_controller(cfg.algorithm)
        self.val_before: dict[str, float] | None = None
        self.val_after: dict[str, float] | None = None
        self.finished = False  # the final checkpoint is written: only the export and summary may be left
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self._val_prompts: list[Prompt] | None = None
        self._rollout_version = 0  # RL updates applied to the rollout engine's weights
        self._ahead: ReadyBatch | None = None  # the next step's batch, generated during this step
        self._async = AsyncRollout(self._collect) if cfg.trainer.async_rollout else None
        if self._async is not None and (threads := device.share_cpu_threads(2)) is not None:
            logger.info(
                "trainer.async_rollout on CPU: %d torch thread(s) each for update and generation", threads
            )
        if self._async is not None and device.has_gpu() and cfg.rollout.name == "vllm":
            logger.info("trainer.async_rollout: vLLM does not sleep during updates (it generates meanwhile)")

    # ---- data ----------------------------------------------------------------------------------------
    def _next_prompts(self, step: int) -> list[Prompt]:
        """This rank's share of the next global batch of records, processed (uid ``<step>-<record index>``)."""
        indices = PromptSampler.shard(self.sampler.next_batch(), self.dist.dp_rank, self.dist.dp_size)
        prompts = []
        for i in indices:
            p = self.builder.build(self.train_records[i], uid=f"{step}-{i}")
            if p is not None:
                prompts.append(p)
        return prompts

    def _make_offline(self, prompt: Prompt) -> Trajectory | None:
        text = prompt.record.get("offline_output")
        if not text:
            return None
        ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = [*ids[: self.cfg.rollout.max_response_length - 1], self.eos_id]
        return Trajectory(
            prompt=prompt,
            response_ids=torch.tensor(ids, dtype=torch.long),
            response_text=text,
            offpolicy=True,
        )

    def _seed(self, step: int, salt: int) -> int:
        # model-parallel peers (same dp_rank) must sample identical responses
        return (self.cfg.trainer.seed * 1_000_003 + step * 7919 + salt * 104_729 + self.dist.dp_rank) % 2**31

    def _sampling(self) -> SamplingParams:
        r = self.cfg.rollout
        return SamplingParams(
            n=r.n, temperature=r.temperature, top_p=r.top_p, top_k=r.top_k, max_tokens=r.max_response_length
        )

    def _require_trajectories(self, count: int, where: str) -> None:
        """Stop with an error when no rank has a trajectory for the step: every record of its batch was
        skipped (missing videos, an empty cache, ...), and training on nothing would only report "done"."""
        if self.dist.all_reduce_sum(count) > 0:
            return
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.builder.skipped.items())) or "none"
        raise UserError(
            f"{where}: no trajectories: every record of the batch was skipped (records skipped so far by "
            f"reason: {skipped})",
            hint="the skipped records are logged above; check data.media_root (record paths are relative to "
            "it), data.cache_dir and data.video_source, or data.max_prompt_length",
        )

    # ---- one step -------------------------------------------------------------------------------------
    def _collect(self, step: int) -> CollectResult:
        """The rollout groups of ``step`` with the rollout engine's current weights (seeded by the step:
        the same in the main thread or the asynchronous rollout's)."""
        cfg = self.cfg
        return collect(
            lambda: self._next_prompts(step),
            self.rollout,
            self._sampling(),
            lambda rnd: self._seed(step, rnd),
            cfg.reward,
            cfg.mix,
            self._make_offline,
            self.dist,
            groups_per_rank=cfg.trainer.rollout_batch_size // self.dist.dp_size,
            dynamic_sampling=cfg.algorithm.dynamic_sampling,
            max_rounds=cfg.algorithm.dynamic_sampling_max_rounds,
            greedy_baseline=cfg.algorithm.needs_greedy_baseline,
        )

    def _take_batch(self, step: int) -> tuple[ReadyBatch, bool]:
        """``step``'s batch and whether it was collected just now (else: generated ahead). Asynchronous:
        then starts generating the next step's batch with the current weights, before this step's update."""
        batch, self._ahead = self._ahead, None
        now = batch is None
        if batch is None:
            start = time.perf_counter()
            batch = ReadyBatch(step, self._rollout_version, self._collect(step))
            batch.generate_s = time.perf_counter() - start
        assert batch.step == step, (batch.step, step)
        if self._async is not None and step + 1 < self.cfg.trainer.total_steps:
            self._async.submit(step + 1, self._rollout_version)
        return batch, now

    def _async_metrics(self, batch: ReadyBatch, timer: PhaseTimer) -> dict[str, float]:
        """Asynchronous rollout: wait for the next step's batch (before the weight sync) and report staleness
        and how much of its generation the update hid."""
        if self._async is None:
            return {}
        metrics = {"async/staleness": float(self.step - batch.weight_version)}
        if self._async.in_flight:
            with timer("rollout_wait"):
                self._ahead = self._async.result()
            metrics["time/generate_ahead_s"] = self._ahead.generate_s
            metrics["time/overlap_s"] = max(0.0, self._ahead.generate_s - self._ahead.wait_s)
        return metrics

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        timer = PhaseTimer()
        start = time.perf_counter()
        step = self.step
        with timer("rollout"):
            batch, collected_now = self._take_batch(step)
        result = batch.result
        if collected_now:  # else the rewards were computed in the rollout thread, hidden or in rollout_wait
            timer.seconds["rollout"] -= result.reward_seconds
            timer.seconds["reward"] += result.reward_seconds
        trajs = [t for g in result.groups for t in g]
        self._require_trajectories(len(trajs), f"step {step + 1}")
        old_pass = needs_old_logprobs(cfg)
        entropy: list[torch.Tensor] = []
        with timer("logprob"):
            if old_pass:
                lp = self.engine.compute_logprobs(trajs, with_entropy=True)
                for t, logp in zip(trajs, lp.logp):
                    t.old_logp = logp
                entropy = lp.entropy or []
            if cfg.algorithm.uses_reference:
                for t, ref in zip(trajs, self.engine.compute_logprobs(trajs, reference=True).logp):
                    t.ref_logp = ref
        adv_metrics = assign_advantages(
            trajs, cfg.algorithm, cfg.rollout.max_response_length, self.kl_ctrl.value
        )
        if self._async is None:  # an asynchronous rollout engine is generating now
            self.rollout.sleep()
        with timer("update"):
            actor = optimize(
                self.engine,
                trajs,
                cfg.algorithm,
                cfg.mix,
                self.dist,
                num_updates=num_updates(cfg),
                ppo_epochs=cfg.trainer.ppo_epochs,
                on_policy=not old_pass,
                kl_coef=self.kl_ctrl.value,
            )
        if self._async is None:
            self.rollout.wake()
        async_metrics = self._async_metrics(batch, timer)
        with timer("sync"):
            sync_weights(self.rollout, self.engine, self.cfg.rollout.sync_bucket_mb)
        self._rollout_version = step + 1
        elapsed = time.perf_counter() - start
        tokens = sum(t.prompt.input_ids.numel() + t.response_len for t in trajs)
        metrics: dict[str, float] = {
            **reward_metrics(trajs),
            **response_metrics(trajs),
            **actor,
            **adv_metrics,
            **result.mix.metrics(),
            "batch/groups": float(len(result.groups)),
            "batch/trajectories": float(len(trajs)),
            "batch/rounds": float(result.rounds),
            "batch/groups_dropped": float(result.groups_dropped),
            "batch/skipped_records": float(sum(self.builder.skipped.values())),
            "perf/tokens_per_s": tokens / max(elapsed, 1e-9),
            "perf/step_s": elapsed,
            **{f"time/{k}_s": v for k, v in timer.seconds.items()},
            **async_metrics,
        }
        if old_pass:  # else the update passes report it (actor/entropy, aggregated like the loss)
            metrics["actor/entropy"] = _mean_tokens(entropy)
        metrics = self.dist.gather_mean(metrics)
        step_kl_controller(self.kl_ctrl, metrics, cfg.trainer.rollout_batch_size * cfg.rollout.n)
        return metrics

    # ---- warm start -----------------------------------------------------------------------------------
    @property
    def global_step(self) -> int:
        """Steps logged so far: supervised warm-start steps, then RL steps."""
        return self.sft_step + self.step

    def warm_start(self, metric_logger: MetricLogger) -> None:
        cfg = self.cfg
        if self.sft_step >= cfg.warmup.sft_steps:
            return
        if self.sft_sampler is None:
            raise ValueError("warmup.sft_steps > 0 but no training record has an offline_output")
        while self.sft_step < cfg.warmup.sft_steps:
            start = time.perf_counter()
            batch = PromptSampler.shard(self.sft_sampler.next_batch(), self.dist.dp_rank, self.dist.dp_size)
            trajs = []
            for i in batch:
                prompt = self.builder.build(self.train_records[self.sft_records[i]], uid=f"sft-{i}")
                traj = self._make_offline(prompt) if prompt is not None else None
                if traj is not None:
                    trajs.append(traj)
            self._require_trajectories(len(trajs), f"warm-start step {self.sft_step + 1}")
            metrics = self.engine.train_step(trajs, nll_loss_fn(trajs, self.dist), need_entropy=False)
            self.sft_step += 1
            metrics["step_s"] = time.perf_counter() - start
            metric_logger.log(
                self.dist.gather_mean({f"sft/{k}": v for k, v in metrics.items()}), self.global_step
            )
            last = self.sft_step == cfg.warmup.sft_steps
            if cfg.trainer.save_every and self.sft_step % cfg.trainer.save_every == 0 and not last:
                self.save()
        sync_weights(self.rollout, self.engine, self.cfg.rollout.sync_bucket_mb)
        if cfg.trainer.val_every or cfg.trainer.val_before:
            after_sft = self.run_validation("after_warmup")
            if after_sft:
                metric_logger.log(after_sft, self.global_step)
        if cfg.trainer.save_every and self.sft_step % cfg.trainer.save_every == 0:
            self.save()  # after the warm start's validation, so that a resume from it needs none

    # ---- validation, checkpoints ---------------------------------------------------------------------
    def _validation_prompts(self) -> list[Prompt]:
        if self._val_prompts is None:
            mine = self.val_records[self.dist.dp_rank :: self.dist.dp_size]
            self._val_prompts = [
                p for p in (self.builder.build(r, uid=f"val-{i}") for i, r in enumerate(mine)) if p
            ]
        return self._val_prompts

    def run_validation(self, tag: str) -> dict[str, float] | None:
        if not self.val_records:
            return None
        r = self.cfg.rollout
        params = SamplingParams(n=1, temperature=r.val_temperature, max_tokens=r.max_response_length)
        types = sorted({str(x["problem_type"]) for x in self.val_records})
        metrics, rows = validate(
            self._validation_prompts(),
            types,
            self.rollout,
            self.cfg.reward,
            params,
            self._seed(self.global_step, 999),
            self.dist,
        )
        rows_all = self.dist.gather_list(rows)
        if self.dist.is_main:
            out = self.run_dir / f"validation_{tag}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("".join(json.dumps(row) + "\n" for row in rows_all))
            logger.info(
                "validation (%s): accuracy %.3f, multiple-choice+boolean %.3f (chance %.3f), format %.3f",
                tag,
                metrics["val/accuracy"],
                metrics.get("val/acc_mc_bool", float("nan")),
                metrics.get("val/chance_mc_bool", float("nan")),
                metrics["val/format"],
            )
        return metrics

    def _trainer_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "sft_step": self.sft_step,
            "sampler": self.sampler.state_dict(),
            "sft_sampler": self.sft_sampler.state_dict() if self.sft_sampler else None,
            "val_before": self.val_before,
            "val_after": self.val_after,
            "finished": self.finished,
            "kl_ctrl": self.kl_ctrl.state_dict(),
            # asynchronous rollout: the next step's batch, already drawn from the sampler and generated
            "async_batch": batch_to_state(self._ahead, _record_index) if self._ahead else None,
        }

    def save(self) -> None:
        ckpt.save_checkpoint(
            self.run_dir,
            self.global_step,
            self.engine,
            self._trainer_state(),
            self.dist,
            keep_last=self.cfg.trainer.keep_checkpoints,
            config=self.cfg,
        )

    def resume(self) -> bool:
        """Continue from the latest checkpoint, if any, and forget what a dead attempt logged after it
        (everything it logged when there is none). Changed settings: see :mod:`vrl.trainer.resume`."""
        latest = ckpt.latest_checkpoint(self.run_dir)
        if latest is None:
            if self.dist.is_main:
                resume.rewind_history(self.run_dir, None)
            return False
        saved = resume.checkpoint_config(latest)
        changes = resume.changes_for(saved, self.cfg) if saved is not None else {}
        resume.check_allowed(changes, self.cfg.resume.allow_changes, self.run_dir)
        state = ckpt.load_checkpoint(latest, self.engine, self.dist)

        self.step = int(state["step"])
        self.sft_step = int(state.get("sft_step", 0))
        self.sampler.load_state_dict(state["sampler"])
        if self.sft_sampler is not None and state.get("sft_sampler"):
            self.sft_sampler.load_state_dict(state["sft_sampler"])
        self.val_before = state.get("val_before")
        self.val_after = state.get("val_after")
        self.finished = bool(state.get("finished"))
        if state.get("kl_ctrl"):
            self.kl_ctrl.load_state_dict(state["kl_ctrl"])
        self._rollout_version = self.step
        if state.get("async_batch"):  # trained next, whatever async_rollout is now: the sampler is past it
            self._ahead = batch_from_state(
                state["async_batch"], lambda i, uid: self.builder.build(self.train_records[i], uid=uid)
            )
        if changes:
            self._apply_changes(changes)
        sync_weights(self.rollout, self.engine, self.cfg.rollout.sync_bucket_mb)
        if self.dist.is_main:
            resume.rewind_history(self.run_dir, self.global_step)
        return True

    def _apply_changes(self, changes: dict[str, tuple[Any, Any]]) -> None:
        """Settings that resume.allow_changes let differ from the checkpoint's: most are read from the
        config at every step; the optimizer's come from the checkpoint unless put back here."""
        listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changes.items())
        logger.warning("resuming at step %d with changed settings: %s", self.global_step, listed)
        if any(k.startswith(("engine.", "warmup.", "trainer.total_steps")) for k in changes):
            resume.apply_optimizer_settings(self.engine, self.cfg.engine)
        if self.dist.is_main:
            resume.record_changes(self.run_dir, self.global_step, changes)

    # ---- the run -------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg = self.cfg.trainer
        resumed = self.resume()
        if resumed and resume.is_complete(self.run_dir, self.cfg):
            logger.info("run %s is complete: nothing to do", self.run_dir)
            self.rollout.close()
            return json.loads((self.run_dir / "summary.json").read_text())
        if self.finished and self.step >= cfg.total_steps and self.sft_step >= self.cfg.warmup.sft_steps:
            return self._finish(self.val_after)  # killed after the final checkpoint: export, summary
        run_config = to_dict(self.cfg)
        metric_logger = build_metric_logger(
            cfg.metrics, self.run_dir, STDOUT_KEYS, self.dist.rank, run_config, cfg.wandb_project
        )
        if metric_logger.enabled:  # report.md after each validation and at the end
            metric_logger.add(RunReport(self.run_dir, run_config, self.dist.world_size))
        if not resumed and cfg.val_before:
            self.val_before = self.run_validation("before")
            if self.val_before:
                metric_logger.log(self.val_before, 0)
        self.warm_start(metric_logger)
        while self.step < cfg.total_steps:
            metrics = self.train_step()
            self.step += 1
            if cfg.val_every and self.step % cfg.val_every == 0 and self.step < cfg.total_steps:
                metrics.update(self.run_validation(f"step{self.step}") or {})
            metric_logger.log(metrics, self.global_step)
            if cfg.save_every and self.step % cfg.save_every == 0 and self.step < cfg.total_steps:
                self.save()
        if self._async is not None:
            self._async.close()
        after = self.run_validation("after")
        if after:
            metric_logger.log(after, self.global_step)
        metric_logger.close()
        self.val_after, self.finished = after, True
        self.save()
        return self._finish(after)

    def _finish(self, after: dict[str, float] | None) -> dict[str, Any]:
        if self.cfg.trainer.export_final:
            self.engine.export_hf(self.run_dir / "final")
        summary: dict[str, Any] = {
            "steps": self.step,
            "sft_steps": self.sft_step,
            "val_before": self.val_before,
            "val_after": after,
        }
        if self.dist.is_main:
            rows = report.read_metrics(self.metrics_path)
            report.reward_curve(rows, self.run_dir / "reward_curve.png", title=self.run_dir.name)
            if after:
                (self.run_dir / "validation.md").write_text(
                    report.validation_markdown(rows, self.val_before, after)
                )
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        self.rollout.close()
        return summary


STDOUT_KEYS = [
    "reward/overall",
    "reward/accuracy",
    "reward/format",
    "response/length_mean",
    "actor/pg_loss",
    "actor/entropy",
    "actor/grad_norm",
    "mix/groups_with_offline",
    "perf/step_s",
    "val/accuracy",
    "val/acc_mc_bool",
    "sft/nll",
    "sft/step_s",
]


def _record_index(prompt: Prompt) -> int:
    """The training record a prompt was built from (its uid is ``<step>-<record index>``)."""
    return int(prompt.uid.rsplit("-", 1)[1])


def _mean_tokens(rows: list[torch.Tensor]) -> float:
    total = sum(float(r.sum()) for r in rows)
    count = sum(r.numel() for r in rows)
    return total / count if count else 0.0
