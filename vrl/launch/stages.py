"""The table of stages ``python jobs/submit.py stage=<name>`` can launch.

A stage is a module that defines ``Config`` (a dataclass inheriting :class:`LaunchConfig`) and either
``run(cfg, ctx)`` — one job, possibly multi-process — or, for array stages, ``plan(cfg) -> list[task]``,
``run_task(cfg, task, ctx)`` and ``finalize(cfg, ctx)``. An optional ``check(cfg)`` reads what the job
will read (data files, records, the model folder, output folders) in the submitting process, before
anything is written (:mod:`vrl.launch.preflight`). A mistake in the user's input, found there or in the
job, raises :class:`~vrl.config.UserError`: one screen, exit status 2, no traceback. Modules are imported
only when their stage is launched, so the launcher starts fast and a broken optional dependency only
affects its own stage.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from vrl.config import ConfigError


@dataclass(frozen=True)
class StageSpec:
    name: str
    module: str
    """Import path of the stage module."""
    summary: str
    """One line for `submit.py` listings."""
    default_preset: str = ""
    """Preset used when the command line names none; ``preset=none`` then selects the schema defaults."""

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def is_array(self, module: ModuleType | None = None) -> bool:
        module = module or self.load()
        return hasattr(module, "plan")


STAGES: dict[str, StageSpec] = {
    s.name: s
    for s in [
        StageSpec(
            "smoke", "vrl.launch.smoke", "cluster smoke test: ranks, torch.distributed, checkpoint/requeue"
        ),
        StageSpec("toy", "vrl.toy.stage", "generate the toy video suite (embedded default data)"),
        StageSpec("cache", "cache_builder.stage", "build the video tensor cache (HDF5) from unified records"),
        StageSpec(
            "train",
            "vrl.trainer.stage",
            "RL training (GRPO family) with rollout and a training engine",
            default_preset="toy",
        ),
        StageSpec(
            "study",
            "vrl.trainer.study",
            "algorithm study: every RL algorithm × seeds from one warm start (array; python -m vrl.trainer.study)",
        ),
        StageSpec(
            "plan",
            "vrl.planner.stage",
            "memory per GPU of a train config (params, grads, optimizer, activations, vLLM); submits nothing",
            default_preset="toy",
        ),
        StageSpec("eval", "eval_harness.stage", "sharded evaluation over video benchmarks, then aggregation"),
        StageSpec(
            "aggregate", "eval_harness.aggregate_stage", "aggregate evaluation predictions into reports"
        ),
    ]
}


def get_stage(name: str) -> StageSpec:
    if name not in STAGES:
        known = "\n".join(f"  {s.name:<10} {s.summary}" for s in STAGES.values())
        raise ConfigError(f"Unknown stage '{name}'. Known stages:\n{known}")
    return STAGES[name]
