"""``stage=train`` schema: every component's config as one typed group, launch keys at the top level."""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import ClassVar

from vrl.algorithms.config import AlgorithmConfig
from vrl.config import MAX_STEPS, all_keys
from vrl.data.config import DataConfig
from vrl.engines.config import EngineConfig, check_token_budget
from vrl.launch.config import LaunchConfig
from vrl.metrics import check_sink_names
from vrl.planner.config import PlanConfig
from vrl.rewards import RewardConfig
from vrl.rollout.config import RolloutConfig
from vrl.toy.spec import ToyConfig
from vrl.trainer.mixing import MixConfig
from vrl.trainer.warmstart import WarmupConfig


@dataclass
class ScheduleConfig:
    total_steps: int = 40
    """Training steps (one rollout batch and its updates per step)."""
    rollout_batch_size: int = 8
    """Prompts per step over all ranks (each yields a group of rollout.n trajectories)."""
    global_batch_size: int = 0
    """Trajectories per optimizer update over all ranks (a multiple of rollout.n); 0: the whole step's."""
    ppo_epochs: int = 1
    """Passes over each step's trajectories."""
    seed: int = 1
    """Seed of sampling, data order and initialisation."""
    save_every: int = 10
    """Checkpoint every this many steps (and at the end); 0: only at the end."""
    keep_checkpoints: int = 2
    """Complete checkpoints kept on disk (>= 1: the newest, the final one included, is always kept)."""
    val_every: int = 0
    """Validate every this many steps; 0: only before and after training."""
    val_before: bool = True
    """Validate before the first step (the 'before' number of the report)."""
    metrics: list[str] = field(default_factory=lambda: ["stdout", "jsonl", "tensorboard"])
    """Metric sinks: stdout (one line per step), jsonl (metrics.jsonl), tensorboard (tb/), wandb (optional package)."""
    wandb_project: str = "vrl"
    """W&B project when metrics names wandb (account, entity, offline mode: WANDB_API_KEY, WANDB_ENTITY, WANDB_MODE)."""
    export_final: bool = True
    """Export the final policy as a Hugging Face checkpoint in <run>/final/."""
    async_rollout: bool = False
    """One-step-off asynchronous training: the rollout engine generates step t+1's batch with the weights of step t-1 while step t updates (staleness exactly one update), hiding generation behind the update. Needs algorithm.rollout_correction=tis|mis (the importance weight π_train / π_rollout corrects the staleness) and a one-rank trainer; see vrl/trainer/async_rollout.py."""

    def validate(self) -> None:
        if not 0 <= self.total_steps <= MAX_STEPS:
            raise ValueError(f"trainer.total_steps must be in [0, {MAX_STEPS}], got {self.total_steps}")
        for key in ("save_every", "val_every"):
            if not 0 <= getattr(self, key) <= MAX_STEPS:
                raise ValueError(
                    f"trainer.{key} must be in [0, {MAX_STEPS}] (0: off), got {getattr(self, key)}"
                )
        if not 1 <= self.ppo_epochs <= 1000:
            raise ValueError(
                f"trainer.ppo_epochs must be in [1, 1000] (passes over a step's data), got {self.ppo_epochs}"
            )
        if self.global_batch_size < 0:
            raise ValueError(
                f"trainer.global_batch_size must be >= 0 (0: the whole step), got {self.global_batch_size}"
            )
        if self.rollout_batch_size < 1:
            raise ValueError("trainer.rollout_batch_size must be >= 1")
        if self.keep_checkpoints < 1:
            raise ValueError(
                f"trainer.keep_checkpoints={self.keep_checkpoints} must be >= 1: the run keeps that many "
                "newest checkpoints, so 0 would delete every one of them, the final one included"
            )
        check_sink_names(self.metrics)


@dataclass
class ResumeConfig:
    allow_changes: list[str] = field(default_factory=list)
    """Keys (or groups, e.g. data) that may differ from the checkpoint's settings when the run resumes: the new values apply from the next step and are recorded in <run>/resume_changes.jsonl. Any other difference is refused."""


@dataclass
class Config(LaunchConfig):
    ALIASES: ClassVar[dict[str, str]] = {"video_source": "data.video_source", "cache_dir": "data.cache_dir"}

    model: str = "tiny-qwen2.5-vl"
    """Policy: a registered tiny model (tiny-qwen2.5-vl, tiny-qwen3-vl) or a Hugging Face model directory."""
    data: DataConfig = field(default_factory=DataConfig)
    """Records, media budgets, frame source, prompt style."""
    toy: ToyConfig = field(default_factory=ToyConfig)
    """The embedded toy suite used when data.train_files is empty."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Rollout engine and sampling."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Training engine, optimizer, parallel layout."""
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    """Advantages, policy loss, KL, entropy, dynamic sampling, overlong shaping."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward weights and extension modules."""
    mix: MixConfig = field(default_factory=MixConfig)
    """Mixed offline/online groups."""
    trainer: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Steps, batch sizes, checkpoints, validation, metrics."""
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    """Optional supervised warm start on offline trajectories before RL."""
    plan: PlanConfig = field(default_factory=PlanConfig)
    """Memory planner: GPU size, checks before a Slurm submission (stage=plan prints the plan)."""
    resume: ResumeConfig = field(default_factory=ResumeConfig)
    """What a resumed run may change (reusing a run name resumes it)."""

    def validate(self) -> None:
        unknown = [k for k in self.resume.allow_changes if k not in all_keys(Config)]
        if unknown:
            near = {k: get_close_matches(k, all_keys(Config), n=1) for k in unknown}
            hints = ", ".join(f"{k} (did you mean {m[0]}?)" if m else k for k, m in near.items())
            raise ValueError(f"resume.allow_changes names keys that do not exist: {hints}")
        if not 0 <= self.warmup.sft_steps <= MAX_STEPS:
            raise ValueError(f"warmup.sft_steps must be in [0, {MAX_STEPS}], got {self.warmup.sft_steps}")
        n = self.rollout.n
        gbs = self.trainer.global_batch_size
        step_trajs = self.trainer.rollout_batch_size * n
        if gbs and gbs % n:
            raise ValueError(
                f"trainer.global_batch_size={gbs} is not a multiple of the group size rollout.n={n}: "
                "a group must not be split across optimizer updates"
            )
        if gbs and step_trajs % gbs:
            raise ValueError(
                f"trainer.global_batch_size={gbs} must divide the step's trajectories "
                f"(rollout_batch_size × n = {step_trajs})"
            )
        nodes, tasks_per_node = self.layout()
        world = nodes * tasks_per_node
        model_parallel = self.engine.tensor_parallel_size * self.engine.pipeline_parallel_size
        if world % model_parallel:
            raise ValueError(
                f"the world size (nodes × tasks_per_node = {world}) must be a multiple of "
                f"engine.tensor_parallel_size × engine.pipeline_parallel_size = {model_parallel}"
            )
        from vrl.rollout.groups import check_rollout_layout

        r = self.rollout  # the rollout engines' groups: refused at submit time, not inside the job
        check_rollout_layout(r.name, r.tensor_parallel_size, r.data_parallel_size, world, tasks_per_node)
        if self.engine.name == "megatron":
            from vrl.engines.megatron.layout import check_layout, spec_if_readable

            spec = spec_if_readable(self.model)  # None until a tiny model is built: the stage checks again
            if spec is not None:
                check_layout(
                    spec, self.engine.tensor_parallel_size, self.engine.pipeline_parallel_size, world
                )
        dp = world // model_parallel
        if self.trainer.rollout_batch_size % dp:
            raise ValueError(
                f"trainer.rollout_batch_size={self.trainer.rollout_batch_size} must be a multiple of the "
                f"data-parallel size ({dp} = world {world} / model-parallel {model_parallel})"
            )
        if self.mix.enable and self.mix.num_offline_per_group >= n:
            raise ValueError(
                f"mix.num_offline_per_group={self.mix.num_offline_per_group} must be < rollout.n={n}: "
                "groups need online samples"
            )
        if self.trainer.async_rollout:
            from vrl.trainer.async_rollout import check_async_config

            check_async_config(self.rollout.name, self.algorithm.rollout_correction, world)
        check_token_budget(
            self.engine,
            self.data.max_prompt_length + self.rollout.max_response_length,
            "data.max_prompt_length + rollout.max_response_length",
        )
