"""End-of-run artefacts: reward-curve PNG, validation table (before vs after), summary JSON.

The run report (``report.md``) that combines them is :mod:`vrl.trainer.run_report`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines past ``last_step`` (a resumed run logs those steps again)."""
    if not path.exists():
        return
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    tmp.replace(path)


def reward_curve(metrics: list[dict[str, Any]], out: Path, title: str = "") -> Path | None:
    """reward/overall and reward/accuracy per step, plus validation accuracy points."""
    rows = [r for r in metrics if "reward/overall" in r]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for key in ("reward/overall", "reward/accuracy", "reward/format"):
        ax.plot(steps, [r.get(key) for r in rows], label=key)
    val = [r for r in metrics if "val/accuracy" in r]
    if val:
        ax.plot([r["step"] for r in val], [r["val/accuracy"] for r in val], "o--", label="val/accuracy")
    head = [r for r in metrics if "val/acc_mc_bool" in r]
    if head:
        ax.plot(
            [r["step"] for r in head], [r["val/acc_mc_bool"] for r in head], "s--", label="val/acc_mc_bool"
        )
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "reward")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def validation_table(
    before: dict[str, float] | None, after: dict[str, float] | None, after_label: str = "after"
) -> str:
    """Markdown: each validation metric before and after training (``–`` where a side is missing)."""
    ref = after or before or {}
    keys = sorted(k for k in ref if k.startswith("val/") and k != "val/num_records")
    lines = [f"| metric | before | {after_label} |", "|---|---|---|"]
    for k in keys:
        b = f"{before[k]:.3f}" if before and k in before else "–"
        a = f"{after[k]:.3f}" if after and k in after else "–"
        lines.append(f"| {k[4:]} | {b} | {a} |")
    lines.append(f"\n{int(ref.get('val/num_records', 0))} held-out records.")
    return "\n".join(lines) + "\n"
