"""``python -m vrl.trainer.study [key=value ...]``: every shipped RL algorithm × seeds from one warm start.

1. One supervised warm start (``stage=train`` with ``trainer.total_steps=0``, exported to ``final/``),
   shared by every arm so that the arms differ only in the algorithm and the seed.
2. ``stage=study``, an array stage: one task per (algorithm, seed), each a ``stage=train`` run from the
   warm-started model with no warm start of its own and the same RL budget. ``cluster=slurm`` submits
   it as a Slurm job array (``array_parallelism`` tasks at once) and a finalize job after it; with
   ``cluster=local`` the tasks take turns (a file lock in the run folder): one training at a time.
   Running the study again under its ``name`` finds its finished runs complete (the training loop's
   resume) and trains only the missing ones, keeping each finished run's wall time.
3. ``finalize`` writes ``study.md`` and ``study.json`` (held-out accuracy mean ± sd over seeds at every
   validated RL step, reward, entropy, response length, seconds per RL step) and ``study.png``
   (validation curves, mean with a ±1 sd band over seeds) in the study's run folder.

Keys: the study's own (``algorithms``, ``seeds``, ``val_every``, ``warm_start``) and ``train.<key>`` for
the training runs (the ``toy`` preset by default, e.g. ``train.trainer.total_steps=20``); the launch keys
(``cluster``, ``profile``, ``run_root``, ``name``, ...) are the study's and apply to the warm start too.
An arm sets only ``algorithm.*`` keys (:data:`ARMS`); everything else is the same for every arm.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrl.config import ConfigError, merge, parse
from vrl.file_lock import file_lock
from vrl.launch.config import LaunchConfig
from vrl.launch.context import RunContext
from vrl.log import get_logger, result_logger, setup_logging
from vrl.trainer import presets
from vrl.trainer.config import Config as TrainConfig
from vrl.trainer.report import read_metrics

logger = get_logger(__name__)

#: arm name → the ``algorithm.*`` overrides that make it; ``{max_len}`` is rollout.max_response_length.
#: With one on-policy update per step (the toy preset) the importance ratio is 1, so clip ranges matter
#: only with trainer.ppo_epochs > 1 or trainer.global_batch_size below the step's trajectories.
ARMS: dict[str, tuple[str, ...]] = {
    "grpo": ("advantage=grpo", "loss_agg_mode=seq_mean_token_mean", "clip_high=0.2"),
    "drgrpo": (
        "advantage=drgrpo",
        "loss_agg_mode=seq_mean_token_sum",
        "token_sum_norm={max_len}",
        "clip_high=0.2",
    ),
    "dapo": ("advantage=grpo", "loss_agg_mode=token_mean", "clip_high=0.28", "dynamic_sampling=true"),
    "gspo": (
        "advantage=grpo",
        "ratio_level=sequence",
        "loss_agg_mode=seq_mean_token_mean",
        "clip_low=0.0003",
        "clip_high=0.0004",
    ),
    "gspo_token": (
        "advantage=grpo",
        "policy_loss=gspo_token",
        "loss_agg_mode=seq_mean_token_mean",
        "clip_low=0.0003",
        "clip_high=0.0004",
    ),
    "rloo": ("advantage=rloo",),
    "gdpo": ("advantage=gdpo",),
    "grpo_passk": ("advantage=grpo_passk",),
    "cispo": ("advantage=grpo", "policy_loss=cispo"),
    "reinforce_pp": ("advantage=reinforce_plus_plus",),
    "reinforce_pp_baseline": ("advantage=reinforce_plus_plus_baseline",),
    "remax": ("advantage=remax",),
}


@dataclass
class Config(LaunchConfig):
    algorithms: list[str] = field(default_factory=lambda: list(ARMS))
    """Arms to run (see vrl.trainer.study.ARMS): grpo, drgrpo, dapo, gspo, gspo_token, rloo, gdpo, grpo_passk,
    cispo, reinforce_pp, reinforce_pp_baseline, remax."""
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    """RL seeds (trainer.seed of each arm's run); the warm start uses train.trainer.seed."""
    val_every: int = 10
    """Validate every this many RL steps: the table's columns (plus step 0, the warm start, and the end)."""
    warm_start: str = ""
    """The warm-started model folder every arm starts from; ``python -m vrl.trainer.study`` trains and sets it."""
    train: TrainConfig = field(default_factory=presets.toy)
    """The training runs' settings (``train.<key>=...``; the toy preset by default); its launch keys are unused."""

    def validate(self) -> None:
        super().validate()
        unknown = [a for a in self.algorithms if a not in ARMS]
        if unknown or not self.algorithms:
            raise ValueError(f"algorithms: unknown or none {unknown}; known: {', '.join(ARMS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and not empty, got {self.seeds}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be >= 1, got {self.val_every}")


def arm_overrides(arm: str, train: TrainConfig) -> list[str]:
    """``algorithm.*`` key=value overrides of ``arm`` for the training config ``train``."""
    if arm not in ARMS:
        raise ValueError(f"unknown study arm '{arm}'; known: {', '.join(ARMS)}")
    max_len = train.rollout.max_response_length
    return [f"algorithm.{kv.format(max_len=max_len)}" for kv in ARMS[arm]]


def arm_config(cfg: Config, arm: str, seed: int) -> TrainConfig:
    """The training config of one task: the shared settings, the warm-started model, the arm, the seed."""
    if not cfg.warm_start:
        raise ConfigError(
            "warm_start is empty: start the study with `python -m vrl.trainer.study`, which trains the shared "
            "warm start first, or name a warm-started model folder (warm_start=<run>/final)"
        )
    overrides = [
        f"model={cfg.warm_start}",
        "warmup.sft_steps=0",
        f"trainer.seed={seed}",
        f"trainer.val_every={cfg.val_every}",
        "trainer.val_before=true",
        "trainer.export_final=false",
        *arm_overrides(arm, cfg.train),
    ]
    return merge(copy.deepcopy(cfg.train), overrides=overrides)


def task_dir(run_dir: Path, arm: str, seed: int) -> Path:
    return Path(run_dir) / "arms" / f"{arm}-seed{seed}"


# ---- the array stage -------------------------------------------------------------------------------
def check(cfg: Config) -> None:
    """Before submission: the warm-started model every arm starts from must exist."""
    if not cfg.warm_start or not (Path(cfg.warm_start) / "config.json").is_file():
        raise ConfigError(
            f"warm_start={cfg.warm_start!r} is not a model folder: start the study with "
            "`python -m vrl.trainer.study`, which trains the shared warm start first, or name a warm-started "
            "model folder (warm_start=<train run>/final)"
        )


def plan(cfg: Config) -> list[dict[str, Any]]:
    """One task per (arm, seed), arm-major."""
    return [{"arm": arm, "seed": seed} for arm in cfg.algorithms for seed in cfg.seeds]


def run_task(cfg: Config, task: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    train_cfg = arm_config(cfg, task["arm"], task["seed"])
    out = task_dir(ctx.run_dir, task["arm"], task["seed"])
    if cfg.cluster != "local":
        return _run_arm(train_cfg, task, out, ctx)
    # submitit's local executor starts every array task at once: they take turns on this machine
    with file_lock(Path(ctx.run_dir) / ".local_task.lock"):
        return _run_arm(train_cfg, task, out, ctx)


def _run_arm(train_cfg: TrainConfig, task: dict[str, Any], out: Path, ctx: RunContext) -> dict[str, Any]:
    from vrl.trainer import stage

    logger.info(
        "study task %d/%d: %s seed %d → %s", ctx.task_index + 1, ctx.num_tasks, task["arm"], task["seed"], out
    )
    start = time.perf_counter()
    before = _mtime(out / "summary.json")
    summary = stage.run(
        train_cfg, RunContext(out, rank=ctx.rank, world_size=ctx.world_size, local_rank=ctx.local_rank)
    )
    # a re-run of the study finds its finished runs complete (the loop returns their summary without
    # writing it): it keeps the wall time of the run that did the work
    if _mtime(out / "summary.json") != before or not (out / "study_task.json").exists():
        (out / "study_task.json").write_text(json.dumps({**task, "wall_s": time.perf_counter() - start}))
    return {**task, "val_after": (summary.get("val_after") or {}).get("val/accuracy")}


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def finalize(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    results = collect_results(ctx.run_dir, cfg)
    table = markdown(results, cfg)
    (ctx.run_dir / "study.md").write_text(table)
    (ctx.run_dir / "study.json").write_text(json.dumps(results, indent=1))
    plot(results, ctx.run_dir / "study.png")
    result_logger().info(table)
    missing = [f"{a} seed {s}" for a, arm in results["arms"].items() for s in arm["missing_seeds"]]
    if missing:
        logger.error("study: runs missing or unfinished: %s", ", ".join(missing))
    return {"table": str(ctx.run_dir / "study.md"), "missing": missing}


# ---- results ---------------------------------------------------------------------------------------
def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN for none)."""
    if not values:
        return float("nan"), float("nan")
    m = sum(values) / len(values)
    if len(values) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def run_summary(rows: list[dict[str, Any]], tail: int = 5) -> dict[str, Any]:
    """One arm run: validation curve (RL step → accuracy) and means over its last ``tail`` RL steps."""
    curve = {int(r["step"]): float(r["val/accuracy"]) for r in rows if _finite(r.get("val/accuracy"))}
    steps = [r for r in rows if _finite(r.get("perf/step_s"))]
    last = steps[-tail:]

    def avg(key: str, rs: Sequence[Mapping[str, Any]]) -> float:
        vals = [float(r[key]) for r in rs if _finite(r.get(key))]
        return sum(vals) / len(vals) if vals else float("nan")

    return {
        "curve": curve,
        "rl_steps": len(steps),
        "reward": avg("reward/overall", last),
        "entropy": avg("actor/entropy", last),
        "length": avg("response/length_mean", last),
        "step_s": avg("perf/step_s", steps[1:] or steps),  # the first step carries one-off costs
    }


def collect_results(run_dir: Path, cfg: Config) -> dict[str, Any]:
    """Per arm: each finished seed's summary, and the seeds without a finished run."""
    arms: dict[str, Any] = {}
    for arm in cfg.algorithms:
        runs, missing = {}, []
        for seed in cfg.seeds:
            d = task_dir(run_dir, arm, seed)
            if not (d / "summary.json").exists():
                missing.append(seed)
                continue
            runs[str(seed)] = run_summary(read_metrics(d / "metrics.jsonl"))
        arms[arm] = {"overrides": list(ARMS[arm]), "runs": runs, "missing_seeds": missing}
    return {"rl_steps": cfg.train.trainer.total_steps, "seeds": list(cfg.seeds), "arms": arms}


def _steps(results: Mapping[str, Any]) -> list[int]:
    return sorted(
        {int(s) for arm in results["arms"].values() for r in arm["runs"].values() for s in r["curve"]}
    )


def _cell(values: Sequence[float], digits: int = 3) -> str:
    if not values:
        return "–"
    m, sd = mean_sd(values)
    return f"{m:.{digits}f} ± {sd:.{digits}f}"


def markdown(results: Mapping[str, Any], cfg: Config) -> str:
    """The study table: held-out accuracy (mean ± sd over seeds) per validated RL step, what RL added
    (last validation minus step 0, the warm start: mean ± sd and the smallest seed's), then the means of
    the last RL steps' reward, token entropy and response length, and seconds per RL step."""
    steps = _steps(results)
    head = ["algorithm", "seeds"] + [f"val acc @ {s}" for s in steps]
    head += [
        "gain (end − 0)",
        "min seed gain",
        "reward (last 5)",
        "entropy (last 5)",
        "length (last 5)",
        "s / step",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, res in results["arms"].items():
        runs = list(res["runs"].values())
        cells = [arm, str(len(runs))]
        curves = [_points(r["curve"]) for r in runs]
        cells += [_cell([c[s] for c in curves if s in c]) for s in steps]
        gains = [_gain(r["curve"]) for r in runs]
        finite = [g for g in gains if _finite(g)]
        cells += [_cell(finite), f"{min(finite):+.3f}" if finite else "–"]
        for key, digits in (("reward", 3), ("entropy", 3), ("length", 1), ("step_s", 2)):
            cells.append(_cell([r[key] for r in runs if _finite(r[key])], digits))
        lines.append("| " + " | ".join(cells) + " |")
    t = cfg.train
    text = "# Algorithm study\n\n" + "\n".join(lines) + "\n\n"
    text += (
        f"Held-out accuracy on the validation records (greedy, scored by the training reward), mean ± sd over "
        f"seeds {', '.join(str(s) for s in cfg.seeds)}; step 0 is the shared warm start ({cfg.warm_start}). "
        f"Every arm: {results['rl_steps']} RL steps of {t.trainer.rollout_batch_size} prompts × "
        f"{t.rollout.n} responses, lr {t.engine.lr:g}, validated every {cfg.val_every} steps; arms differ only in "
        "their algorithm.* keys (vrl.trainer.study.ARMS).\n"
    )
    missing = [
        f"{a} (seeds {res['missing_seeds']})" for a, res in results["arms"].items() if res["missing_seeds"]
    ]
    if missing:
        text += f"\nMissing or unfinished runs: {', '.join(missing)}.\n"
    return text


def _points(curve: Mapping[Any, float]) -> dict[int, float]:
    """RL step → accuracy (JSON turns the integer keys into strings)."""
    return {int(k): float(v) for k, v in curve.items()}


def _gain(curve: Mapping[Any, float]) -> float:
    pts = _points(curve)
    if 0 not in pts or len(pts) < 2:
        return float("nan")
    return pts[max(pts)] - pts[0]


def plot(results: Mapping[str, Any], out: Path) -> Path | None:
    """Validation accuracy per RL step, one line per arm (mean over seeds) in a ±1 sd band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for arm, res in results["arms"].items():
        curves = [_points(r["curve"]) for r in res["runs"].values()]
        steps = sorted(set().union(*curves)) if curves else []
        if not steps:
            continue
        stats = [mean_sd([c[s] for c in curves if s in c]) for s in steps]
        mean = [m for m, _ in stats]
        (line,) = ax.plot(steps, mean, marker="o", markersize=3, label=f"{arm} (n={len(curves)})")
        ax.fill_between(
            steps,
            [m - sd for m, sd in stats],
            [m + sd for m, sd in stats],
            color=line.get_color(),
            alpha=0.15,
        )
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("RL step (0: the shared warm start)")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_title("algorithm study: mean ± sd over seeds")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ---- the single command ----------------------------------------------------------------------------
LAUNCH_KEYS = ("cluster", "profile", "run_root", "log_level", "timeout_min", "nodes", "tasks_per_node")


def main(argv: Sequence[str]) -> int:
    """Warm start once (a ``stage=train`` job), then the study's array stage from it."""
    from vrl.launch import cli

    setup_logging()
    args = list(argv)
    if any(a.startswith(("stage=", "warm_start=")) for a in args):
        raise SystemExit("vrl.trainer.study sets stage and warm_start itself; pass the other keys only")
    cfg, _ = parse(Config, args)  # fails here, before any job, on a wrong key
    name = cfg.name or f"study-{time.strftime('%Y%m%d-%H%M%S')}"
    warm_name = f"{name}-warmstart"
    launch = [a for a in args if a.split("=", 1)[0] in LAUNCH_KEYS]
    train = [a[len("train.") :] for a in args if a.startswith("train.")]
    warm_run = Path(cfg.run_root).resolve() / "train" / warm_name
    if not (warm_run / "final" / "config.json").exists():
        logger.info("study %s: the shared warm start (%s)", name, warm_run)
        status = cli.main(
            [
                "stage=train",
                f"name={warm_name}",
                *launch,
                "wait=true",
                *train,
                "trainer.total_steps=0",
                "trainer.export_final=true",
            ]
        )
        if status != 0:
            logger.error("study: the warm start failed (status %d)", status)
            return status
    else:
        logger.info("study %s: reusing the warm start %s", name, warm_run / "final")
    extra = [f"name={name}", f"warm_start={warm_run / 'final'}", "wait=true"]
    return cli.main(["stage=study", *[a for a in args if not a.startswith("name=")], *extra])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
