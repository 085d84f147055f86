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
from vrl.config import UserError, load
from vrl.launch.context import RunContext

__all__ = ["Config", "check", "run"]


def _eval_config(cfg: Config) -> EvalConfig:
    """The evaluation run's saved config; a folder that is not an evaluation run is a user error."""
    eval_dir = cfg.eval_dir()
    saved = eval_dir / "config.yaml"
    if not saved.is_file():
        what = (
            "does not exist" if not eval_dir.exists() else "is not an evaluation run folder (no config.yaml)"
        )
        raise UserError(
            f"{eval_dir} {what}",
            hint="set eval_run=<runs/eval/NAME> (a folder stage=eval wrote) or name=NAME with its run_root",
        )
    try:
        return load(EvalConfig, saved)
    except UserError as e:
        raise UserError(f"{saved}: not a readable evaluation config: {e}") from None


def check(cfg: Config) -> None:
    """Before submission: the evaluation run exists and its config reads back."""
    _eval_config(cfg)


def run(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    eval_dir = cfg.eval_dir()
    eval_cfg = _eval_config(cfg)
    summary = aggregate_run(eval_cfg, eval_dir, allow_partial=cfg.allow_partial, judge=cfg.judge)
    if ctx.run_dir.resolve() != eval_dir.resolve():
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "report.md", "scores.png"):
            shutil.copy2(eval_dir / name, ctx.run_dir / name)
        shutil.copytree(eval_dir / "results", ctx.run_dir / "results", dirs_exist_ok=True)
    return summary
