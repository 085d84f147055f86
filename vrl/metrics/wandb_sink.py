"""Weights & Biases as a metric sink: the resolved config once, scalars per step (``trainer.metrics=[...,wandb]``).

Optional: ``wandb`` is not a core dependency (``pip install 'vrl[wandb]'``; the CPU lock has it). Account,
entity and mode come from wandb's own environment variables: ``WANDB_API_KEY`` (or ``wandb login``),
``WANDB_ENTITY``, ``WANDB_MODE=offline`` (no account, no network: the run lands in ``<run>/wandb/`` and
``wandb sync <run>/wandb/offline-run-*`` uploads it later). A resubmitted run continues the same W&B run:
its id is derived from the run folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vrl.log import get_logger

logger = get_logger(__name__)

INSTALL_HINT = (
    "trainer.metrics names 'wandb' but the wandb package is not installed in this environment: "
    "pip install 'vrl[wandb]' (or pip install wandb), or drop wandb from trainer.metrics."
)


def check_wandb_installed() -> None:
    """Raise ``ValueError`` naming the fix when ``wandb`` is missing (called when the config is validated)."""
    if importlib.util.find_spec("wandb") is None:
        raise ValueError(INSTALL_HINT)


def run_id_for(out_dir: str | Path) -> str:
    """A W&B run id stable across resubmissions of one run folder: ``<folder name>-<8 hex of its path>``.

    W&B ids allow letters, digits, ``-`` and ``_``; the hash keeps two ``runs/train/x`` of different
    checkouts apart."""
    path = Path(out_dir).resolve()
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", path.name).strip("-")[:48] or "run"
    return f"{name}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


class WandbSink:
    """One W&B run per training run; ``log`` sends the finite numeric scalars of a step.

    ``config`` is the resolved run config (nested dict, as in ``config.yaml``); ``project`` and ``name``
    label the run (the run folder's name by default)."""

    def __init__(
        self,
        out_dir: str | Path,
        project: str,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise ValueError(INSTALL_HINT) from exc
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        try:
            self._run = wandb.init(
                project=project,
                name=name or out.name,
                id=run_id_for(out),
                resume="allow",
                dir=str(out),
                config=dict(config or {}),
            )
        except wandb.errors.UsageError as exc:
            raise ValueError(
                f"W&B could not start ({exc}). Log in (wandb login, or set WANDB_API_KEY), or set "
                "WANDB_MODE=offline to write the run under the run folder and upload it later with wandb sync."
            ) from exc
        logger.info("W&B run %s (project %s, mode %s)", self._run.id, project, self._run.settings.mode)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        clean = {
            k: v
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
        if clean:
            self._run.log(clean, step=step)

    def close(self) -> None:
        self._run.finish()
