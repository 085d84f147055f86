"""Resuming a run exactly: the settings it resumes with, the history it keeps, whether anything is left.

- **Settings.** Every checkpoint keeps the config it was trained with (``config.yaml``). A run resumes
  from it only with the same settings: each differing key is refused, listed with both values, unless
  ``resume.allow_changes`` names it (or a group above it, e.g. ``data``); then the new value applies from
  the next step and the change is appended to ``<run>/resume_changes.jsonl``. The policy's weights and
  the optimizer's moments always come from the checkpoint. Keys that only say where the job runs or how
  it is observed (:data:`EXEMPT`) are not compared. The launcher compares before it submits (a refused
  resubmission fails at once and leaves the run folder as it was) and the job again when it loads.
- **History.** Metric sinks append. An attempt killed after checkpoint N logged rows past N; one killed
  before any checkpoint logged rows of a run that starts over. :func:`rewind_history` forgets them:
  ``metrics.jsonl`` is cut to step N (removed when there is no checkpoint) and TensorBoard is told to
  discard steps after N (a purge event, TensorBoard's own mechanism for restarts), or ``tb/`` is removed.
- **Completion.** ``summary.json`` is written last; a run whose summary reached the configured steps is
  complete, and resubmitting it submits nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from vrl.config import ConfigError, to_dict
from vrl.log import get_logger
from vrl.trainer import report
from vrl.trainer.checkpoint import latest_checkpoint

logger = get_logger(__name__)

#: placeholder for a key present on one side only
ABSENT = "<absent>"
#: keys never compared: where and how the job runs, how the run is observed and persisted
EXEMPT = frozenset(
    {
        "cluster",
        "profile",
        "wait",
        "timeout_min",
        "log_level",
        "array_parallelism",
        "name",
        "run_root",
        "resume.allow_changes",
        "trainer.metrics",
        "trainer.wandb_project",
        "trainer.save_every",
        "trainer.keep_checkpoints",
        "trainer.export_final",
    }
)
#: engine keys that the checkpoint's optimizer state would otherwise override
OPTIMIZER_KEYS = ("engine.lr", "engine.betas", "engine.weight_decay")
CHANGES_FILE = "resume_changes.jsonl"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping → ``{dotted key: leaf value}`` (lists are values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(
    saved: Mapping[str, Any], current: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, current value)}`` for every compared key that differs (nested mappings).

    Settings written by an older vrl lack the keys added since: such a key at its ``defaults`` value is
    no change. A key the schema no longer has is ignored (nothing could apply it)."""
    old, new = flatten(saved), flatten(current)
    default = flatten(defaults or {})
    changes = {}
    for key in sorted(new):
        if key in EXEMPT:
            continue
        a, b = old.get(key, ABSENT), new[key]
        if a is ABSENT and key in default and b == default[key]:
            continue
        if a != b:
            changes[key] = (a, b)
    return changes


def changes_for(saved: Mapping[str, Any], cfg: Any) -> dict[str, tuple[Any, Any]]:
    """:func:`config_changes` of the run config ``cfg`` against ``saved`` (its schema's defaults)."""
    return config_changes(saved, to_dict(cfg), to_dict(type(cfg)()))


def _allowed(key: str, allow: Sequence[str]) -> bool:
    return any(key == name or key.startswith(name + ".") for name in allow)


def check_allowed(changes: Mapping[str, tuple[Any, Any]], allow: Sequence[str], run_dir: str | Path) -> None:
    """Raise :class:`ConfigError` listing every change that ``allow`` does not name."""
    refused = {k: v for k, v in changes.items() if not _allowed(k, allow)}
    if not refused:
        return
    lines = "\n".join(f"  {k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
    keys = ",".join(refused)
    raise ConfigError(
        f"run {run_dir} resumes from a checkpoint trained with other settings; these differ:\n{lines}\n"
        f"Resume with the saved settings, or name the keys in resume.allow_changes=[{keys}] to apply the "
        f"new values from the next step (recorded in {CHANGES_FILE}), or start a new run (another name=)."
    )


def checkpoint_config(checkpoint: Path) -> dict[str, Any] | None:
    """The settings ``checkpoint`` was trained with (None for checkpoints written before they were kept)."""
    path = Path(checkpoint) / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def is_complete(run_dir: Path, cfg: Any) -> bool:
    """The run wrote its summary (last thing a run writes) after the configured steps."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return False
    summary = json.loads(path.read_text())
    return (
        summary.get("steps", -1) >= cfg.trainer.total_steps
        and summary.get("sft_steps", -1) >= cfg.warmup.sft_steps
    )


def before_submit(cfg: Any, run_dir: Path) -> str | None:
    """The launcher's check of a resubmission: refuse changed settings; say when nothing is left to do."""
    latest = latest_checkpoint(run_dir)
    if latest is None:
        return None  # nothing saved: the run starts over with these settings
    saved = checkpoint_config(latest)
    if saved is None and (Path(run_dir) / "config.yaml").exists():
        saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
    if saved is not None:
        check_allowed(changes_for(saved, cfg), cfg.resume.allow_changes, run_dir)
    if is_complete(run_dir, cfg):
        return (
            f"run {run_dir} is complete ({cfg.trainer.total_steps} steps, summary.json): nothing to do. "
            "To train it further, raise trainer.total_steps and name it: "
            "resume.allow_changes=[trainer.total_steps]."
        )
    return None


def record_changes(run_dir: Path, step: int, changes: Mapping[str, tuple[Any, Any]]) -> None:
    """Append the applied changes to ``<run>/resume_changes.jsonl`` (rank 0)."""
    row = {
        "step": step,
        "time": datetime.now().isoformat(timespec="seconds"),
        "changes": {k: [a, b] for k, (a, b) in changes.items()},
    }
    with (Path(run_dir) / CHANGES_FILE).open("a") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")


def apply_optimizer_settings(engine: Any, engine_cfg: Any) -> None:
    """Put the configured learning rate, betas and weight decay into the engine's optimizer and LR
    schedule (loading the checkpoint restored the saved ones); the current step's LR follows the new base.
    """
    optimizer, scheduler = getattr(engine, "optimizer", None), getattr(engine, "scheduler", None)
    if optimizer is None or not hasattr(scheduler, "lr_lambdas"):
        raise ValueError(f"engine {engine.name} cannot change optimizer settings on resume")
    scheduler.base_lrs = [engine_cfg.lr] * len(optimizer.param_groups)
    for group, fn in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group.update(betas=tuple(engine_cfg.betas), weight_decay=engine_cfg.weight_decay)
        group["initial_lr"] = engine_cfg.lr
        group["lr"] = engine_cfg.lr * fn(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def rewind_history(run_dir: Path, step: int | None) -> None:
    """Forget what metric sinks recorded after checkpoint ``step`` (None: no checkpoint, forget it all).

    Rank 0, before the sinks open."""
    run_dir = Path(run_dir)
    metrics, tb = run_dir / "metrics.jsonl", run_dir / "tb"
    if step is None:
        metrics.unlink(missing_ok=True)
        shutil.rmtree(tb, ignore_errors=True)
        for path in run_dir.glob("validation_*.jsonl"):
            path.unlink()
        return
    report.truncate_metrics(metrics, step)
    if tb.is_dir() and any(p.name.startswith("events.") for p in tb.iterdir()):
        from torch.utils.tensorboard import SummaryWriter

        SummaryWriter(log_dir=str(tb), purge_step=step + 1).close()
