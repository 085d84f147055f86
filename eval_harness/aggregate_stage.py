"""``stage=aggregate``: aggregate an evaluation run's predictions again (or for the first time).

``python jobs/submit.py stage=aggregate eval_run=runs/eval/<name> [allow_partial=true] [judge.model=...]``
reads the evaluation's saved config and prediction files and writes the reports into the evaluation's
folder; copies of the reports land in this run's folder too. Useful after a failed finalize job,
to report a partial run, or to add an LLM judge afterwards.
"""

from __future__ import annotations

import shutil
from typing import Any

from eval_harness.config import AggregateConfig as Config
from eval_harness.config import Config as EvalConfig
from eval_harness.results import aggregate_run
from vrl.config import load
from vrl.launch.context import RunContext

__all__ = ["Config", "run"]


def run(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    eval_dir = cfg.eval_dir()
    saved = eval_dir / "config.yaml"
    if not saved.is_file():
        raise ValueError(f"{eval_dir} is not an evaluation run folder (no config.yaml); set eval_run=")
    eval_cfg = load(EvalConfig, saved)
    summary = aggregate_run(eval_cfg, eval_dir, allow_partial=cfg.allow_partial, judge=cfg.judge)
    if ctx.run_dir.resolve() != eval_dir.resolve():
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "report.md", "scores.png"):
            shutil.copy2(eval_dir / name, ctx.run_dir / name)
        shutil.copytree(eval_dir / "results", ctx.run_dir / "results", dirs_exist_ok=True)
    return summary
