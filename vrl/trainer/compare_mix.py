"""``python -m vrl.trainer.compare_mix [key=value ...]``: the same training with and without offline mixing, over seeds.

For every seed of ``seeds=[1,2,3]`` (the default) it launches ``stage=train`` twice through the normal
launcher, identical but for ``mix.enable`` (true, then false), with ``trainer.seed=<seed>``: one training
run per arm and seed. It reports, per arm, the validation accuracy of every task family (``val/family/<f>``)
at every validated step and at the end as mean ± sd over the seeds, next to the family's chance level: a
markdown table (printed and written to ``<run_root>/train/<name>-compare.md``), the raw numbers
(``.json``) and a PNG with one panel per family (mean over seeds, ±1 sd band, chance dotted).

Any other ``key=value`` is passed to every run (the default: the stage's default preset, i.e. the embedded
toy run, validated every ``trainer.val_every=5`` steps). The helpers below (seeds, launching arms × seeds,
reading a run back, aggregating, the table and the plot) are shared with :mod:`vrl.trainer.compare_joint`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vrl.log import get_logger, result_logger, setup_logging
from vrl.trainer.report import read_metrics
from vrl.trainer.study import mean_sd

logger = get_logger(__name__)

ARMS = (("mix on", "true"), ("mix off", "false"))
DEFAULT_SEEDS = (1, 2, 3)
FAMILY_PREFIX = "val/family/"
CHANCE_PREFIX = "val/family_chance/"
#: run-wide validation metrics reported beside the families: the label each gets in the table and plot
OVERALL = {"val/accuracy": "all records", "val/format": "answer format"}

#: one run read back: {"curves": {label: {step: acc}}, "chance": {label: c}, ...}
RunResult = dict[str, Any]


# ---- command line ----------------------------------------------------------------------------------
def value(args: Sequence[str], key: str, default: str) -> str:
    """The value of ``key=`` in ``args`` (the last one wins), or ``default``."""
    found = default
    for a in args:
        if a.startswith(f"{key}="):
            found = a.split("=", 1)[1]
    return found


def take_seeds(argv: Sequence[str]) -> tuple[list[int], list[str]]:
    """``seeds=[1,2,3]`` (or ``seeds=1,2,3``) out of ``argv``: the seeds and the other arguments."""
    seeds = list(DEFAULT_SEEDS)
    rest = []
    for a in argv:
        if not a.startswith("seeds="):
            rest.append(a)
            continue
        text = a.split("=", 1)[1].strip().strip("[]")
        try:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        except ValueError as e:
            raise ValueError(f"seeds must be a list of integers like seeds=[1,2,3], got {a!r}") from e
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and not empty, got {seeds}")
    return seeds, rest


def refuse_keys(args: Sequence[str], keys: Sequence[str], command: str) -> None:
    """A ``ValueError`` naming the keys ``command`` sets itself when the user passed one of them."""
    given = sorted({a.split("=", 1)[0] for a in args if a.split("=", 1)[0] in keys})
    if given:
        raise ValueError(f"{command} sets {', '.join(keys)} itself; do not pass {', '.join(given)}")


def run_name(name: str, arm: str, seed: int) -> str:
    return f"{name}-{arm.replace(' ', '-').replace('+', 'and')}-seed{seed}"


def run_argv(name: str, arm: str, seed: int, args: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """The launcher arguments of one run: ``args``, then the arm's overrides, then the seed (they win)."""
    return [
        "stage=train",
        f"name={run_name(name, arm, seed)}",
        "wait=true",
        *args,
        *overrides,
        f"trainer.seed={seed}",
    ]


def launch_arms(
    arms: Sequence[tuple[str, Sequence[str]]],
    seeds: Sequence[int],
    args: Sequence[str],
    name: str,
    read: Callable[[Path], RunResult],
) -> dict[str, dict[int, RunResult]] | int:
    """One ``stage=train`` run per seed and arm (seed-major, so a stopped comparison still has paired arms):
    ``args``, then the arm's overrides, then ``trainer.seed``. Returns arm → seed → ``read(run_dir)``, or
    the launcher's status of the first run that failed."""
    from vrl.launch import cli

    run_root = Path(value(args, "run_root", "runs"))
    runs: dict[str, dict[int, RunResult]] = {arm: {} for arm, _ in arms}
    for seed in seeds:
        for arm, overrides in arms:
            rname = run_name(name, arm, seed)
            logger.info("%s: %s, seed %d (%s)", name, arm, seed, " ".join(overrides) or "no overrides")
            start = time.perf_counter()
            status = cli.main(run_argv(name, arm, seed, args, overrides))
            if status != 0:
                logger.error("%s: the %s run of seed %d failed (status %d)", name, arm, seed, status)
                return status
            result = read(run_root / "train" / rname)
            result["wall_s"] = time.perf_counter() - start
            runs[arm][seed] = result
    return runs


# ---- one run read back -----------------------------------------------------------------------------
def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def family_curves(rows: list[dict[str, Any]]) -> tuple[dict[str, dict[int, float]], dict[str, float]]:
    """Per task family: global step → validation accuracy (last value per step), and its chance level;
    also the accuracy over all records and the answer-format rate (:data:`OVERALL`, no chance level)."""
    curves: dict[str, dict[int, float]] = {}
    chance: dict[str, float] = {}
    for r in rows:
        for k, v in r.items():
            if k.startswith(FAMILY_PREFIX) and _finite(v):
                curves.setdefault(k[len(FAMILY_PREFIX) :], {})[int(r["step"])] = float(v)
            elif k in OVERALL and _finite(v):
                curves.setdefault(OVERALL[k], {})[int(r["step"])] = float(v)
            elif k.startswith(CHANCE_PREFIX) and _finite(v):
                chance[k[len(CHANCE_PREFIX) :]] = float(v)
    return curves, chance


def read_run(run_dir: Path) -> RunResult:
    """A finished run's family curves and chance levels, and how many groups got an offline trajectory."""
    rows = read_metrics(Path(run_dir) / "metrics.jsonl")
    curves, chance = family_curves(rows)
    return {
        "curves": curves,
        "chance": chance,
        "offline_groups": sum(float(r.get("mix/groups_with_offline", 0.0)) for r in rows),
        "run_dir": str(run_dir),
    }


# ---- over seeds ------------------------------------------------------------------------------------
def aggregate(runs: Mapping[str, Mapping[Any, RunResult]]) -> dict[str, Any]:
    """Mean ± sd over seeds, per arm and curve label: ``{"arms": {arm: {label: {"steps": {step: [mean, sd,
    n]}, "end": [mean, sd, n]}}}, "chance": {label: c}}``. ``end`` is each run's last validated value
    (runs of one comparison validate at the same steps, so it is the same step for every seed)."""
    chance: dict[str, float] = {}
    arms: dict[str, dict[str, Any]] = {}
    for arm, by_seed in runs.items():
        labels = sorted({lab for r in by_seed.values() for lab in r["curves"]})
        per_label: dict[str, Any] = {}
        for lab in labels:
            curves = [
                {int(s): v for s, v in r["curves"][lab].items()}
                for r in by_seed.values()
                if lab in r["curves"]
            ]
            steps = sorted(set().union(*curves))
            per_label[lab] = {
                "steps": {
                    s: [*mean_sd([c[s] for c in curves if s in c]), sum(s in c for c in curves)]
                    for s in steps
                },
                "end": [*mean_sd([c[max(c)] for c in curves if c]), len(curves)],
            }
        arms[arm] = per_label
        for r in by_seed.values():
            chance.update(r["chance"])
    return {"arms": arms, "chance": chance}


def _cell(stat: Sequence[float] | None) -> str:
    if not stat or not _finite(stat[0]):
        return "–"
    return f"{stat[0]:.3f} ± {stat[1]:.3f}"


def markdown(
    agg: Mapping[str, Any],
    title: str,
    seeds: Sequence[int],
    notes: Sequence[str] = (),
    diff: tuple[str, str] | None = None,
) -> str:
    """The end of the runs, one row per label with its chance level, each arm's mean ± sd over seeds and
    the difference of the means ``diff`` = (arm a, arm b): a − b (default: the first arm minus the second);
    then per label one row per validated step."""
    arms = list(agg["arms"])
    if diff is None and len(arms) == 2:
        diff = (arms[0], arms[1])
    labels = sorted({lab for a in arms for lab in agg["arms"][a]})
    seed_text = ", ".join(str(s) for s in seeds)
    out = [f"# {title}", "", f"Validation accuracy, mean ± sd over seeds {seed_text} (trainer.seed).", ""]
    out += ["## At the end of the runs", ""]
    head = ["family", "chance", *arms] + ([f"{diff[0]} − {diff[1]}"] if diff else [])
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lab in labels:
        ends = {a: agg["arms"][a].get(lab, {}).get("end") for a in arms}
        c = agg["chance"].get(lab)
        cells = [lab, f"{c:.3f}" if _finite(c) else "–", *(_cell(ends[a]) for a in arms)]
        if diff:
            a, b = ends.get(diff[0]), ends.get(diff[1])
            ok = bool(a and b and _finite(a[0]) and _finite(b[0]))
            cells.append(f"{a[0] - b[0]:+.3f}" if ok else "–")  # type: ignore[index]
        out.append("| " + " | ".join(cells) + " |")
    for lab in labels:
        c = agg["chance"].get(lab)
        out += ["", f"## {lab} per validated step" + (f" (chance {c:.3f})" if _finite(c) else ""), ""]
        out += ["| step | " + " | ".join(arms) + " |", "|" + "---|" * (len(arms) + 1)]
        steps = sorted({int(s) for a in arms for s in agg["arms"][a].get(lab, {}).get("steps", {})})
        for s in steps:
            cells = [_cell(_at(agg["arms"][a].get(lab, {}).get("steps", {}), s)) for a in arms]
            out.append(f"| {s} | " + " | ".join(cells) + " |")
    if notes:
        out += ["", *notes]
    return "\n".join(out) + "\n"


def _at(steps: Mapping[Any, Any], s: int) -> Any:
    """The entry of step ``s`` (JSON round trips turn integer keys into strings)."""
    return steps.get(s, steps.get(str(s)))


def plot(agg: Mapping[str, Any], out: Path, title: str, xlabel: str) -> Path | None:
    """One panel per label: each arm's mean over seeds with a ±1 sd band, the chance level dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(agg["arms"])
    labels = sorted({lab for a in arms for lab in agg["arms"][a]})
    if not labels:
        return None
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.8), squeeze=False)
    for ax, lab in zip(axes[0], labels):
        for arm in arms:
            steps_map = agg["arms"][arm].get(lab, {}).get("steps", {})
            steps = sorted(int(s) for s in steps_map)
            if not steps:
                continue
            stats = [_at(steps_map, s) for s in steps]
            mean = [m for m, _, _ in stats]
            (line,) = ax.plot(
                steps, mean, marker="o", markersize=3, label=f"{arm} (n={max(n for *_, n in stats)})"
            )
            ax.fill_between(
                steps,
                [m - sd for m, sd, _ in stats],
                [m + sd for m, sd, _ in stats],
                color=line.get_color(),
                alpha=0.18,
            )
        c = agg["chance"].get(lab)
        if _finite(c):
            ax.axhline(c, color="gray", linestyle=":", label="chance")
        ax.set_title(lab)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy (mean ± sd)")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_outputs(
    out: Path, table: str, runs: Mapping[str, Any], agg: Mapping[str, Any], title: str, xlabel: str
) -> None:
    """``<out>.md`` (the table, also printed), ``<out>.json`` (per run and aggregated), ``<out>.png``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    result_logger().info(table)
    out.with_suffix(".md").write_text(table)
    out.with_suffix(".json").write_text(json.dumps({"runs": runs, "aggregate": agg}, indent=1))
    plot(agg, out.with_suffix(".png"), title, xlabel)
    logger.info("written: %s.md, %s.json, %s.png", out, out, out)


# ---- the command -----------------------------------------------------------------------------------
TITLE = "Offline mixing on and off"
XLABEL = "global step (warm-start steps, then RL steps)"


def notes(runs: Mapping[str, Mapping[int, RunResult]]) -> list[str]:
    """One line per arm: offline groups per run (mean), wall time per run (mean), run folders."""
    lines = []
    for arm, by_seed in runs.items():
        rs = list(by_seed.values())
        if not rs:
            continue
        groups = sum(r["offline_groups"] for r in rs) / len(rs)
        wall = sum(r["wall_s"] for r in rs) / len(rs)
        lines.append(
            f"{arm}: offline trajectories mixed into {groups:.0f} groups per run (mean); "
            f"{wall / 60:.1f} min per run; run folders {', '.join(r['run_dir'] for r in rs)}"
        )
    return lines


def main(argv: Sequence[str]) -> int:
    setup_logging()
    try:
        seeds, args = take_seeds(argv)
        refuse_keys(args, ("stage", "name", "mix.enable", "trainer.seed"), "compare_mix")
    except ValueError as e:
        raise SystemExit(str(e)) from e
    if not any(a.startswith("trainer.val_every=") for a in args):
        args.append("trainer.val_every=5")
    if not any(a.startswith("trainer.export_final=") for a in args):
        args.append("trainer.export_final=false")  # nothing reads the exported model of a comparison
    name = f"compare-mix-{time.strftime('%Y%m%d-%H%M%S')}"
    arms = [(arm, [f"mix.enable={enable}"]) for arm, enable in ARMS]
    runs = launch_arms(arms, seeds, args, name, read_run)
    if isinstance(runs, int):
        return runs
    agg = aggregate(runs)
    table = markdown(agg, TITLE, seeds, notes(runs))
    out = Path(value(args, "run_root", "runs")) / "train" / f"{name}-compare"
    write_outputs(out, table, runs, agg, TITLE, XLABEL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
