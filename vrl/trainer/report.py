"""End-of-run artefacts: reward-curve PNG, validation table (before vs after), summary JSON.

The run report (``report.md``) that combines them is :mod:`vrl.trainer.run_report`."""

from __future__ import annotations

import json
import math
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


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def warm_start_steps(metrics: list[dict[str, Any]]) -> int:
    """Supervised warm-start steps in the log: the last step of a row with ``sft/nll`` (0: none).

    RL step ``k`` is logged at global step ``warm_start_steps + k``."""
    return max((int(r["step"]) for r in metrics if _finite(r.get("sft/nll"))), default=0)


def _val_points(rows: list[dict[str, Any]], key: str, offset: int) -> tuple[list[int], list[float]]:
    points = [(int(r["step"]) - offset, float(r[key])) for r in rows if _finite(r.get(key))]
    return [s for s, _ in points], [v for _, v in points]


def reward_curve(metrics: list[dict[str, Any]], out: Path, title: str = "") -> Path | None:
    """Two panels, each on its own step axis: the warm start (NLL per supervised step, validation
    accuracy before and after it) and RL (every reward component per RL step, validation accuracy at its
    points, RL step 0 being the validation after the warm start). A run without a warm start draws the RL
    panel only, one without RL steps the warm-start panel only; ``None`` when there is neither.
    TensorBoard and ``metrics.jsonl`` keep every scalar; this figure is the part a person reads."""
    sft = [r for r in metrics if _finite(r.get("sft/nll"))]
    rl = [r for r in metrics if _finite(r.get("reward/overall"))]
    if not sft and not rl:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_sft = warm_start_steps(metrics)
    panels = (["sft"] if sft else []) + (["rl"] if rl else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "sft":
            ax.plot(
                [r["step"] for r in sft], [r["sft/nll"] for r in sft], color="tab:purple", label="sft/nll"
            )
            ax.set_xlabel("warm-start (supervised) step")
            ax.set_ylabel("NLL of the offline answers")
            ax.set_yscale("log")
            val = [r for r in metrics if int(r.get("step", -1)) <= n_sft]
            twin = ax.twinx()
            for key, style in (("val/accuracy", "o--"), ("val/acc_mc_bool", "s--")):
                xs, ys = _val_points(val, key, 0)
                if xs:
                    twin.plot(xs, ys, style, label=key)
            twin.set_ylim(-0.02, 1.02)
            twin.set_ylabel("held-out accuracy")
            lines = ax.get_legend_handles_labels()
            more = twin.get_legend_handles_labels()
            ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right", fontsize=8)
            ax.set_title("warm start")
        else:
            steps = [int(r["step"]) - n_sft for r in rl]
            keys = sorted({k for r in rl for k in r if k.startswith("reward/") and k.count("/") == 1})
            keys = ["reward/overall"] + [k for k in keys if k != "reward/overall"]
            for key in keys:
                ax.plot(steps, [r.get(key, float("nan")) for r in rl], label=key, alpha=0.8)
            val = [r for r in metrics if int(r.get("step", -1)) >= n_sft]
            for key, style in (("val/accuracy", "o--"), ("val/acc_mc_bool", "s--")):
                xs, ys = _val_points(val, key, n_sft)
                if xs:
                    ax.plot(xs, ys, style, color="black" if key == "val/accuracy" else "gray", label=key)
            chance = [r["val/chance_mc_bool"] for r in val if _finite(r.get("val/chance_mc_bool"))]
            if chance:
                ax.axhline(chance[-1], color="gray", linestyle=":", label="chance (mc + boolean)")
            ax.set_xlabel("RL step" + (f" (after {n_sft} warm-start steps)" if n_sft else ""))
            ax.set_ylabel("reward / held-out accuracy")
            ax.set_ylim(-0.02, 1.02)
            ax.legend(loc="lower right", fontsize=8)
            ax.set_title("reinforcement learning")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def validation_table(
    before: dict[str, float] | None, after: dict[str, float] | None, after_label: str = "after"
) -> str:
    """Markdown: each validation metric before and after training (``–`` where a side is missing)."""
    ref = after or before or {}
    keys = sorted(k for k in ref if k.startswith("val/") and k != "val/num_records" and not _chance_key(k))
    lines = [f"| metric | before | {after_label} |", "|---|---|---|"]
    for k in keys:
        b = f"{before[k]:.3f}" if before and k in before else "–"
        a = f"{after[k]:.3f}" if after and k in after else "–"
        lines.append(f"| {k[4:]} | {b} | {a} |")
    lines.append(f"\n{int(ref.get('val/num_records', 0))} held-out records.")
    return "\n".join(lines) + "\n"


def _chance_key(key: str) -> bool:
    return key.startswith("val/family_chance/") or key == "val/chance_mc_bool"


def after_warm_start(metrics: list[dict[str, Any]]) -> dict[str, float] | None:
    """The validation logged when the warm start ended (at its last step, in a row without an RL step)."""
    n_sft = warm_start_steps(metrics)
    if not n_sft:
        return None
    for r in metrics:
        if int(r.get("step", -1)) == n_sft and _finite(r.get("val/accuracy")) and "reward/overall" not in r:
            return {k: float(v) for k, v in r.items() if k.startswith("val/") and _finite(v)}
    return None


def validation_markdown(
    metrics: list[dict[str, Any]], before: dict[str, float] | None, after: dict[str, float] | None
) -> str:
    """``validation.md``: held-out accuracy before training, after the warm start and after RL, per task
    family and per problem type, each with its chance level, and what RL added over the warm start."""
    warm = after_warm_start(metrics)
    ref = after or warm or before or {}
    cols = [("before", before)] + ([("after warm start", warm)] if warm else []) + [("after RL", after)]
    head = "| | chance | " + " | ".join(label for label, _ in cols) + (" | RL gain |" if warm else " |")
    lines = [head, "|---" * (len(cols) + 2 + bool(warm)) + "|"]

    def cell(src: dict[str, float] | None, key: str) -> str:
        return f"{src[key]:.3f}" if src and key in src else "–"

    def row(label: str, key: str, chance_key: str) -> None:
        cells = [cell(src, key) for _, src in cols]
        gain = ""
        if warm:
            gain = f"{after[key] - warm[key]:+.3f}" if after and key in after and key in warm else "–"
            gain = f" {gain} |"
        lines.append(f"| {label} | {cell(ref, chance_key)} | " + " | ".join(cells) + f" |{gain}")

    row("**all records**", "val/accuracy", "")
    if "val/acc_mc_bool" in ref:
        row("multiple choice + boolean", "val/acc_mc_bool", "val/chance_mc_bool")
    for key in sorted(k for k in ref if k.startswith("val/family/")):
        family = key[len("val/family/") :]
        row(f"family `{family}`", key, f"val/family_chance/{family}")
    for key in sorted(k for k in ref if k.startswith("val/accuracy/")):
        row(f"type {key[len('val/accuracy/') :].replace('_', ' ')}", key, "")
    row("answer format", "val/format", "")
    text = "# Held-out validation\n\n" + "\n".join(lines) + "\n"
    text += (
        f"\n{int(ref.get('val/num_records', 0))} held-out records, greedy answers scored by the training "
        "reward. chance: the expected accuracy of a uniform guess among the options (– where guessing "
        "cannot score)."
    )
    if warm:
        text += " RL gain: after RL minus after the warm start."
    return text + "\n"
