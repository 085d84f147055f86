"""``report.md`` of a training run: key settings, time per phase and tokens/s, validation, links to plots.

The performance table has the columns NeMo-RL publishes for its runs (algorithm, model, ranks,
parallel layout, generation and training batch sizes, tokens/s per GPU, step time), followed by the
step time split into phases: generate (rollout), reward, log-prob (old/reference pass), update (optimizer),
sync (weights into the rollout engine), other (data, advantages, the rest).

:class:`RunReport` is a metric sink (rank 0 only): it rewrites the report and the reward curve whenever a
logged row carries validation metrics, and once more when the run ends, so a killed run keeps the last
one. Rows already in ``metrics.jsonl`` (a resumed run) are read at construction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vrl.trainer import report

# (label, metrics key); "time/rollout_s" is generation without the reward time collect() measured inside it
PHASES = (
    ("generate", "time/rollout_s"),
    ("reward", "time/reward_s"),
    ("log-prob", "time/logprob_s"),
    ("update", "time/update_s"),
    ("sync", "time/sync_s"),
)
# (label, dotted config key) of the settings table; keys a config does not have are left out
SETTINGS = (
    ("model", "model"),
    ("training data", "data.train_files"),
    ("video source", "data.video_source"),
    ("algorithm (advantage)", "algorithm.advantage"),
    ("loss aggregation", "algorithm.loss_agg_mode"),
    ("KL", "algorithm.kl"),
    ("dynamic sampling", "algorithm.dynamic_sampling"),
    ("offline/online mixing", "mix.enable"),
    ("engine", "engine.name"),
    ("learning rate", "engine.lr"),
    ("parameter dtype", "engine.param_dtype"),
    ("rollout engine", "rollout.name"),
    ("responses per prompt (rollout.n)", "rollout.n"),
    ("max response length", "rollout.max_response_length"),
    ("temperature", "rollout.temperature"),
    ("prompts per step", "trainer.rollout_batch_size"),
    ("trajectories per update", "trainer.global_batch_size"),
    ("PPO epochs", "trainer.ppo_epochs"),
    ("RL steps", "trainer.total_steps"),
    ("warm-start steps", "warmup.sft_steps"),
    ("seed", "trainer.seed"),
)


def lookup(config: Mapping[str, Any], key: str) -> Any:
    """``config['a']['b']`` for ``key='a.b'``; ``None`` when absent."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if v and (abs(v) < 1e-2 or abs(v) >= 1e5) else f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) if v else "–"
    return str(v) if v not in (None, "") else "–"


def settings_table(config: Mapping[str, Any], world_size: int) -> str:
    lines = ["| setting | value |", "|---|---|"]
    for label, key in SETTINGS:
        value = lookup(config, key)
        if value is None:
            continue
        if key == "data.train_files" and not value:
            value = "embedded toy suite"
        if key == "trainer.global_batch_size" and value == 0:
            value = "all of the step's (one update)"
        lines.append(f"| {label} | {_fmt(value)} |")
    tp = lookup(config, "engine.tensor_parallel_size") or 1
    pp = lookup(config, "engine.pipeline_parallel_size") or 1
    lines.append(
        f"| ranks (data × tensor × pipeline parallel) | {world_size} ({world_size // (tp * pp)} × {tp} × {pp}) |"
    )
    return "\n".join(lines) + "\n"


def rl_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows of RL steps (those that carry a step time); warm-start and validation-only rows excluded."""
    return [r for r in rows if _finite(r.get("perf/step_s"))]


def steady_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """RL steps without the first: it includes one-off costs (compilation, cache warm-up)."""
    steps = rl_rows(rows)
    return steps[1:] if len(steps) > 1 else steps


def performance(rows: Sequence[Mapping[str, Any]], config: Mapping[str, Any], world_size: int) -> str:
    """NeMo-RL-shaped summary row plus the time per phase, means over the steady RL steps."""
    steps = steady_rows(rows)
    if not steps:
        return "No RL step has finished yet.\n"
    tp = lookup(config, "engine.tensor_parallel_size") or 1
    pp = lookup(config, "engine.pipeline_parallel_size") or 1
    replicas = max(1, world_size // (tp * pp))
    step_s = _mean([r["perf/step_s"] for r in steps])
    # perf/tokens_per_s is each rank's (prompt + response tokens) / step time, averaged over ranks; the
    # model-parallel peers of a replica process the same tokens, so the run's rate is the mean × replicas.
    tokens_per_s = _mean([r["perf/tokens_per_s"] for r in steps if _finite(r.get("perf/tokens_per_s"))])
    total_tps = tokens_per_s * replicas
    n = lookup(config, "rollout.n") or 1
    prompts = lookup(config, "trainer.rollout_batch_size") or 0
    gbs = lookup(config, "trainer.global_batch_size") or prompts * n
    first = rl_rows(rows)[0]["step"] if rl_rows(rows) else 0
    lines = [
        "| algorithm | model | ranks | TP / PP | engine / rollout | G-GBS (prompts × n) | T-GBS "
        "| max response | tokens/s | tokens/s/GPU | step time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {lookup(config, 'algorithm.advantage')} | {lookup(config, 'model')} | {world_size} | {tp} / {pp} "
        f"| {lookup(config, 'engine.name')} / {lookup(config, 'rollout.name')} | {prompts * n} ({prompts} × {n}) "
        f"| {gbs} | {lookup(config, 'rollout.max_response_length')} | {total_tps:.1f} "
        f"| {total_tps / max(1, world_size):.1f} | {step_s:.2f} |",
        "",
        f"Means over {len(steps)} RL step(s)"
        + (
            f" (the first, step {first}, is left out: it includes one-off warm-up costs)."
            if len(rl_rows(rows)) > 1
            else "."
        )
        + " tokens: prompt + response tokens of every trajectory; on CPU a GPU is one rank.",
        "",
        "| phase | s/step | share |",
        "|---|---|---|",
    ]
    accounted = 0.0
    for label, key in PHASES:
        values = [r[key] for r in steps if _finite(r.get(key))]
        if not values:
            continue
        sec = _mean(values)
        accounted += sec
        lines.append(f"| {label} | {sec:.3f} | {100 * sec / step_s:.1f}% |")
    other = max(0.0, step_s - accounted)
    lines.append(f"| other | {other:.3f} | {100 * other / step_s:.1f}% |")
    lines.append(f"| **step** | **{step_s:.3f}** | 100% |")
    return "\n".join(lines) + "\n"


def validation_points(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, float] | None, dict[str, float] | None, int]:
    """(before training, latest, its step): ``before`` is a validation logged at step 0."""
    vals = [r for r in rows if _finite(r.get("val/accuracy"))]
    if not vals:
        return None, None, 0
    before = _val_metrics(vals[0]) if vals[0].get("step") == 0 else None
    latest = vals[-1]
    if before is not None and len(vals) == 1:
        return before, None, 0
    return before, _val_metrics(latest), int(latest.get("step", 0))


def _val_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in row.items() if k.startswith("val/") and _finite(v)}


def reward_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    steps = [r for r in rl_rows(rows) if _finite(r.get("reward/overall"))]
    if not steps:
        return ""
    k = max(1, min(5, len(steps) // 2))
    head = _mean([r["reward/overall"] for r in steps[:k]])
    tail = _mean([r["reward/overall"] for r in steps[-k:]])
    return f"Training reward (reward/overall): {head:.3f} over the first {k} step(s), {tail:.3f} over the last {k}.\n"


def links(run_dir: Path, config: Mapping[str, Any], finished: bool) -> str:
    items = []
    if (run_dir / "reward_curve.png").exists():
        items.append("- [reward_curve.png](reward_curve.png): training reward per step, validation points")
    if (run_dir / "tb").is_dir():
        items.append(f"- `tb/`: TensorBoard scalars (`tensorboard --logdir {run_dir / 'tb'}`)")
    for name, what in (("metrics.jsonl", "every logged row"), ("config.yaml", "the resolved config")):
        if (run_dir / name).exists():
            items.append(f"- [{name}]({name}): {what}")
    for path in sorted(run_dir.glob("validation_*.jsonl")):
        items.append(f"- [{path.name}]({path.name}): per-record validation answers")
    offline = sorted((run_dir / "wandb").glob("offline-run-*")) if (run_dir / "wandb").is_dir() else []
    if offline:
        items.append(f"- W&B offline run `wandb/{offline[-1].name}` (upload: `wandb sync {offline[-1]}`)")
    elif (run_dir / "wandb").is_dir():
        items.append("- `wandb/`: the W&B run's local files")
    if finished:
        items.append(
            "- [validation.md](validation.md), [summary.json](summary.json): written when the run ends"
        )
        if lookup(config, "trainer.export_final"):
            items.append("- `final/`: the trained policy as a Hugging Face model")
    return "\n".join(items) + "\n"


def render(
    rows: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    run_dir: Path,
    world_size: int,
    finished: bool,
) -> str:
    rl = rl_rows(rows)
    sft = [r for r in rows if _finite(r.get("sft/step_s"))]
    last_step = max((int(r.get("step", 0)) for r in rows), default=0)
    status = (
        f"finished: {len(rl)} RL step(s) after {len(sft)} warm-start step(s)"
        if finished
        else f"in progress or stopped: last logged step {last_step}"
    )
    before, latest, latest_step = validation_points(rows)
    parts = [
        f"# Training run `{run_dir.name}`\n",
        f"Status: {status} (report written {time.strftime('%Y-%m-%d %H:%M:%S')}).\n",
        "## Settings\n",
        settings_table(config, world_size),
        "## Performance\n",
        performance(rows, config, world_size),
        "## Validation\n",
    ]
    if latest is None and before is None:
        parts.append("No validation yet.\n")
    elif latest is None:
        parts.append(report.validation_table(before, None, after_label="after (not yet)"))
    else:
        label = f"after (step {latest_step})" if finished else f"latest (step {latest_step})"
        parts.append(report.validation_table(before, latest, after_label=label))
    summary = reward_summary(rows)
    if summary:
        parts.append(summary)
    parts += ["## Files\n", links(run_dir, config, finished)]
    if (run_dir / "reward_curve.png").exists():
        parts.append("![reward curve](reward_curve.png)\n")
    return "\n".join(parts)


class RunReport:
    """Metric sink that keeps ``<run>/report.md`` (and ``reward_curve.png``) current; rank 0 only."""

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any], world_size: int) -> None:
        self.run_dir = Path(run_dir)
        self.config = config
        self.world_size = world_size
        self.rows: list[dict[str, Any]] = report.read_metrics(self.run_dir / "metrics.jsonl")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.rows.append({"step": step, **metrics})
        if any(k.startswith("val/") for k in metrics):
            self.write(finished=False)

    def close(self) -> None:
        self.write(finished=True)

    def write(self, finished: bool) -> Path:
        """Redraw the reward curve and rewrite ``report.md`` atomically (temp file, rename)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        report.reward_curve(self.rows, self.run_dir / "reward_curve.png", title=self.run_dir.name)
        out = self.run_dir / "report.md"
        tmp = out.with_suffix(".md.tmp")
        tmp.write_text(render(self.rows, self.config, self.run_dir, self.world_size, finished))
        tmp.replace(out)
        return out
