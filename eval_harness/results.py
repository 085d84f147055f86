"""Aggregate a run: its prediction files → official metrics per benchmark → reports.

Used by the eval stage's finalize job (after the array) and by ``stage=aggregate``. Records without a
prediction make it refuse, listing how many are missing per benchmark (``missing.json`` names them),
unless ``allow_partial``; then every number is over the scored records and ``num_missing`` says how many
are not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval_harness.benchmarks import get_benchmark
from eval_harness.config import Config, JudgeConfig
from eval_harness.judge import Judge
from eval_harness.official import find_reference
from eval_harness.predictions import SETTINGS_FILE, load_predictions, predictions_dir
from eval_harness.records import KEY
from eval_harness.report import write_reports
from eval_harness.runner import load_all, model_settings
from eval_harness.scoring import MissingPredictions, summarize
from vrl.config import UserError
from vrl.log import get_logger

logger = get_logger(__name__)


class IncompleteRun(UserError):
    """Samples without predictions and ``allow_partial`` off (the user reruns or allows a partial report:
    ``jobs/submit.py`` shows it in one screen)."""


def _settings(cfg: Config, run_dir: Path) -> dict[str, Any]:
    path = predictions_dir(run_dir) / SETTINGS_FILE
    if path.is_file():
        return json.loads(path.read_text())
    return model_settings(cfg)[2]


def aggregate_run(
    cfg: Config, run_dir: str | Path, allow_partial: bool, judge: JudgeConfig | None = None
) -> dict[str, Any]:
    """Write ``results.json``, ``results/``, ``report.md``, ``scores.png`` into ``run_dir``; return a summary."""
    run_dir = Path(run_dir)
    judge_cfg = judge if judge is not None and judge.model else cfg.judge
    records = load_all(cfg)
    entries: dict[str, dict] = {}
    missing: dict[str, list[str]] = {}
    judge_runner = (
        Judge(judge_cfg.model, judge_cfg.engine, judge_cfg.max_new_tokens, cfg.inference, run_dir)
        if judge_cfg.model
        else None
    )
    try:
        for name, recs in records.items():
            keys = {r[KEY] for r in recs}
            lines = {k: v for k, v in load_predictions(run_dir, name).items() if k in keys}
            responses = {k: (line.get("response") or "") for k, line in lines.items()}
            errors = {
                k: str(line["error"].get("reason", "error")) for k, line in lines.items() if line.get("error")
            }
            bench = get_benchmark(name)
            verdicts = None
            if judge_runner is not None and bench.judge:
                answered = {k: v for k, v in responses.items() if k not in errors}
                verdicts = judge_runner.verdicts(name, recs, answered)
            try:
                entries[name] = summarize(
                    bench,
                    recs,
                    responses,
                    allow_partial=allow_partial,
                    reward=cfg.reward,
                    verdicts=verdicts,
                    errors=errors,
                )
            except MissingPredictions as e:
                missing[name] = e.missing
    finally:
        if judge_runner is not None:
            judge_runner.close()
    if missing:
        (run_dir / "missing.json").write_text(json.dumps(missing, indent=1) + "\n")
        counts = ", ".join(f"{name}: {len(keys)} of {len(records[name])}" for name, keys in missing.items())
        raise IncompleteRun(
            f"samples without predictions ({counts}; keys in {run_dir / 'missing.json'}): rerun the same "
            "command (same name=) to finish them, or aggregate with allow_partial=true"
        )
    settings = _settings(cfg, run_dir)
    reference = find_reference(cfg.reference, str(cfg.model))
    paths = write_reports(run_dir, entries, {"model": cfg.model, "settings": settings}, reference)
    for e in entries.values():
        partial = f" ({e['num_missing']} missing)" if e["num_missing"] else ""
        logger.info("%s: %.2f over %d records%s", e["title"], e["overall"], e["num_scored"], partial)
    return {
        "results": str(paths["results"]),
        "overall": {name: e["overall"] for name, e in entries.items()},
        "num_missing": sum(e["num_missing"] for e in entries.values()),
    }
