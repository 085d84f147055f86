"""``stage=plan``: the memory a train config needs per GPU, before anything waits in a queue.

``python jobs/submit.py stage=plan <the train keys>`` takes exactly the train stage's keys (and presets)
plus ``format=table|json``, reads the model's ``config.json`` only, and answers on the spot: nothing is
submitted. ``stage=train cluster=slurm`` calls :func:`check_before_submit` first: one verdict line, and a
layout that cannot fit is refused with the nearest one that does (``plan.force=true`` submits anyway).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from vrl.config import ConfigError, all_keys, choice, get_preset, preset_names, register_preset
from vrl.launch.context import RunContext
from vrl.log import get_logger, result_logger
from vrl.planner.layout import layout_from_config
from vrl.planner.plan import GIB, MemoryPlan, Suggestion, plan_memory, suggest
from vrl.planner.report import format_table, plan_json
from vrl.planner.shapes import read_shapes
from vrl.planner.tensors import total_numel
from vrl.planner.workload import workload_from_config
from vrl.trainer import presets as _train_presets  # noqa: F401  (registers the train presets mirrored below)
from vrl.trainer.config import Config as TrainConfig

logger = get_logger(__name__)

__all__ = ["Config", "check_before_submit", "make_plan", "run", "run_here"]


@dataclass
class Config(TrainConfig):
    format: str = choice("table", ["table", "json"])
    """table: the per-GPU table; json: one JSON object (bytes per GPU by component, total, device_bytes, fits)."""


def _mirror(train_preset: str):
    def build() -> Config:
        base = get_preset("train", train_preset)
        return Config(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})

    build.__doc__ = f"The train stage's preset '{train_preset}'."
    return build


for _name in preset_names("train"):
    if _name not in preset_names("plan"):
        register_preset("plan", _name)(_mirror(_name))


def device_bytes(cfg: TrainConfig) -> int | None:
    """One GPU's memory: ``plan.gpu_memory_gb``, else the Slurm profile's ``gpu_memory_gb``, else unknown."""
    if cfg.plan.gpu_memory_gb:
        return int(cfg.plan.gpu_memory_gb * GIB)
    if cfg.cluster == "slurm":
        from vrl.launch.profiles import load_profile

        gb = getattr(load_profile(cfg.profile), "gpu_memory_gb", None)
        if gb:
            return int(gb * GIB)
    return None


def supported_keys(cfg: TrainConfig) -> set[str]:
    """The config's keys (the planner's suggestions only name keys that exist)."""
    return set(all_keys(type(cfg)))


def make_plan(cfg: TrainConfig) -> tuple[MemoryPlan, Suggestion | None, int]:
    """(the plan, the nearest layout that fits when this one does not, the model's parameter count)."""
    try:
        shapes = read_shapes(cfg.model)
    except ValueError as e:
        raise ConfigError(f"memory plan: {e}") from e
    layout = layout_from_config(cfg)
    workload = workload_from_config(cfg, shapes)
    dev = device_bytes(cfg)
    reserved = int(cfg.plan.reserved_gb * GIB)
    plan = plan_memory(shapes, layout, workload, cfg.rollout, dev, reserved)
    suggestion = None
    if plan.fits is False and dev is not None:
        nodes, _ = cfg.layout()
        suggestion = suggest(
            shapes,
            layout,
            workload,
            cfg.rollout,
            dev,
            reserved,
            supported_keys(cfg),
            nodes=nodes,
            prompts_per_step=cfg.trainer.rollout_batch_size,
        )
    return plan, suggestion, total_numel(shapes)


def run_here(cfg: Config) -> int:
    """Print the plan (table or JSON) on stdout; submits nothing. Exit status 0."""
    plan, suggestion, numel = make_plan(cfg)
    out = result_logger()
    if cfg.format == "json":
        out.info(plan_json(plan, cfg.model, numel, suggestion))
    else:
        out.info(format_table(plan, cfg.model, numel, suggestion))
    return 0


def run(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    """As a job (e.g. ``cluster=debug``): the same plan, written to ``<run>/plan.json`` too."""
    plan, suggestion, numel = make_plan(cfg)
    (ctx.run_dir / "plan.json").write_text(plan_json(plan, cfg.model, numel, suggestion))
    result_logger().info(format_table(plan, cfg.model, numel, suggestion))
    return {"total": plan.total, "fits": plan.fits}


def check_before_submit(cfg: TrainConfig) -> MemoryPlan:
    """Print the plan's verdict line; refuse (ConfigError) a layout that cannot fit unless plan.force."""
    plan, suggestion, _ = make_plan(cfg)
    result_logger().info(plan.verdict())
    if plan.fits is not False:
        return plan
    hint = (
        f"nearest layout that fits ({suggestion.plan.total / GIB:.1f} GiB per GPU): {suggestion.command_line()}"
        if suggestion
        else "no layout within the planner's reach fits: more GPUs, a shorter media budget or responses"
    )
    if cfg.plan.force:
        logger.warning("submitting anyway (plan.force=true); %s", hint)
        return plan
    raise ConfigError(
        f"{plan.verdict()}. {hint}. The full table: python jobs/submit.py stage=plan <the same keys>; "
        "plan.force=true submits anyway."
    )


def plan_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The JSON object of :func:`run_here` as a dict (for callers and tests)."""
    plan, suggestion, numel = make_plan(cfg)
    return json.loads(plan_json(plan, cfg.model, numel, suggestion))
