"""``python -m vrl.trainer.compare_mix [key=value ...]``: the same training run with and without offline mixing.

Launches ``stage=train`` twice through the normal launcher, identical but for ``mix.enable`` (true, then
false), and prints both validation curves (accuracy on the multiple-choice and boolean records against
chance, per step) and the final accuracy per problem type. Any ``key=value`` is passed to both runs (the
default: the stage's default preset, i.e. the embedded toy run, validated every ``trainer.val_every=5``
steps). The table also goes to ``<run_root>/train/<name>-compare.md`` and the curves to a PNG beside it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vrl.launch import cli
from vrl.log import get_logger, result_logger, setup_logging
from vrl.trainer.report import read_metrics

logger = get_logger(__name__)

CURVE_KEY = "val/acc_mc_bool"
ARMS = (("mix on", "true"), ("mix off", "false"))


def _value(args: Sequence[str], key: str, default: str) -> str:
    for a in args:
        if a.startswith(f"{key}="):
            return a.split("=", 1)[1]
    return default


def curve(rows: list[dict[str, Any]]) -> dict[int, float]:
    """Global step → validation accuracy on multiple-choice + boolean records (last value per step)."""
    return {int(r["step"]): float(r[CURVE_KEY]) for r in rows if CURVE_KEY in r}


def markdown(results: dict[str, dict[str, Any]]) -> str:
    """Both curves side by side, then the final validation per key."""
    arms = list(results)
    steps = sorted(set().union(*(results[a]["curve"] for a in arms)))
    lines = [
        f"Validation accuracy on multiple-choice + boolean records (chance {results[arms[0]]['chance']:.3f})",
        "",
        "| step | " + " | ".join(arms) + " |",
        "| --- | " + " | ".join("---" for _ in arms) + " |",
    ]
    for s in steps:
        cells = [results[a]["curve"].get(s) for a in arms]
        lines.append(f"| {s} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    keys = sorted({k for a in arms for k in results[a]["final"] if k.startswith("val/accuracy")})
    lines += ["", "| final | " + " | ".join(arms) + " |", "| --- | " + " | ".join("---" for _ in arms) + " |"]
    for k in keys:
        cells = [results[a]["final"].get(k) for a in arms]
        lines.append(f"| {k} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    for a in arms:
        lines.append(
            f"\n{a}: offline trajectories mixed into {results[a]['offline_groups']:.0f} groups over the run; "
            f"wall time {results[a]['wall_s'] / 60:.1f} min; run folder {results[a]['run_dir']}"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, res in results.items():
        steps = sorted(res["curve"])
        ax.plot(steps, [res["curve"][s] for s in steps], marker="o", label=arm)
    chance = next(iter(results.values()))["chance"]
    ax.axhline(chance, color="gray", linestyle=":", label="chance")
    ax.axhline(2 * chance, color="gray", linestyle="--", label="2 × chance")
    ax.set_xlabel("step (warm-start steps, then RL steps)")
    ax.set_ylabel("val accuracy (MC + boolean)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: Sequence[str]) -> int:
    setup_logging()
    args = [a for a in argv if not a.startswith(("name=", "mix.enable=", "stage="))]
    if len(args) != len(argv):
        raise SystemExit("compare_mix sets stage, name and mix.enable itself; pass the other keys only")
    if not any(a.startswith("trainer.val_every=") for a in args):
        args.append("trainer.val_every=5")
    run_root = Path(_value(args, "run_root", "runs"))
    name = f"compare-mix-{time.strftime('%Y%m%d-%H%M%S')}"
    results: dict[str, dict[str, Any]] = {}
    for arm, enable in ARMS:
        run_name = f"{name}-{arm.replace(' ', '-')}"
        logger.info("compare_mix: %s (mix.enable=%s)", arm, enable)
        start = time.perf_counter()
        status = cli.main(["stage=train", f"name={run_name}", f"mix.enable={enable}", "wait=true", *args])
        if status != 0:
            logger.error("compare_mix: the %s run failed (status %d)", arm, status)
            return status
        run_dir = run_root / "train" / run_name
        rows = read_metrics(run_dir / "metrics.jsonl")
        final = next((r for r in reversed(rows) if CURVE_KEY in r), {})
        results[arm] = {
            "curve": curve(rows),
            "final": final,
            "chance": float(final.get("val/chance_mc_bool", float("nan"))),
            "offline_groups": sum(float(r.get("mix/groups_with_offline", 0.0)) for r in rows),
            "wall_s": time.perf_counter() - start,
            "run_dir": str(run_dir),
        }
    table = markdown(results)
    result_logger().info(table)
    out = run_root / "train" / f"{name}-compare"
    out.with_suffix(".md").write_text(table)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    plot(results, out.with_suffix(".png"))
    logger.info("written: %s.md, %s.json, %s.png", out, out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
