"""Reports of an evaluation: ``results.json``, ``results/<benchmark>.json``, ``report.md``, ``scores.png``.

``results.json`` maps each benchmark to the entry of :func:`eval_harness.scoring.summarize` (overall and
subsets on a 0–100 scale, counts, notes) plus the model, the run's settings and the official score when
known; ``report.md`` has a table per benchmark with the officially reported score of the model when known,
our delta and the entry's notes (which number is the headline, a coverage gap); the PNG is a bar chart of
the overall scores with the official ones marked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eval_harness.official import Reference
from vrl.log import get_logger

logger = get_logger(__name__)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _delta(ours: float, official: float | None) -> str:
    return "–" if official is None else f"{ours - official:+.1f}"


def _settings_line(settings: dict[str, Any]) -> str:
    video = settings.get("video_spec", {})
    return (
        f"engine {settings.get('engine')}, prompt {settings.get('prompt_style')}, "
        f"max_new_tokens {settings.get('max_new_tokens')}, temperature {settings.get('temperature')}, "
        f"fps {video.get('fps')}, frames {video.get('min_frames')}–{video.get('max_frames')}, "
        f"pixels/frame {video.get('min_pixels')}–{video.get('max_pixels')}, total pixels {video.get('total_pixels')}"
    )


def render_markdown(entries: dict[str, dict], meta: dict[str, Any], reference: Reference | None) -> str:
    official = reference.scores if reference else {}
    lines = [
        "# Evaluation report",
        "",
        f"- model: `{meta.get('model')}`",
        f"- settings: {_settings_line(meta.get('settings', {}))}",
        f"- reference: {f'{reference.model} ({reference.source})' if reference else 'none'}",
        "",
        "## Summary",
        "",
        "| benchmark | metric | ours | official | Δ | scored | missing | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in entries.items():
        ref = official.get(name)
        lines.append(
            f"| {e['title']} | {e['metric'].split(';')[0]} | {_fmt(e['overall'])} | {_fmt(ref)} | "
            f"{_delta(e['overall'], ref)} | {e['num_scored']} | {e['num_missing']} | {e['num_errors']} |"
        )
    for name, e in entries.items():
        ref = official.get(name)
        lines += ["", f"## {e['title']}", "", f"Metric: {e['metric']}."]
        if reference and name in reference.notes:
            lines.append(f"Official: {reference.notes[name]}.")
        lines += ["", "| | score | n | official | Δ |", "|---|---|---|---|---|"]
        lines.append(
            f"| **overall** | **{_fmt(e['overall'])}** | {e['num_scored']} | {_fmt(ref)} | {_delta(e['overall'], ref)} |"
        )
        for subset, value in e["subsets"].items():
            lines.append(f"| {subset} | {_fmt(value)} | {e['counts'].get(subset, '')} | – | – |")
        for detail, value in e.get("details", {}).items():
            lines.append(f"| _{detail}_ | {_fmt(value)} | | – | – |")
        notes = list(e.get("notes", []))
        if e["num_missing"]:
            notes.append(
                f"{e['num_missing']} of {e['num_records']} records have no prediction (allow_partial)"
            )
        if e.get("errors"):
            reasons = ", ".join(f"{k}: {v}" for k, v in e["errors"].items())
            notes.append(f"{e['num_errors']} samples could not run and count as wrong ({reasons})")
        if e.get("num_judged"):
            notes.append(f"{e['num_judged']} open-ended answers scored by the LLM judge")
        if notes:
            lines += [""] + [f"> {n}" for n in notes]
    return "\n".join(lines) + "\n"


def plot(entries: dict[str, dict], reference: Reference | None, path: Path) -> None:
    """Bar chart of the overall scores; official scores as black markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(entries)
    ours = [entries[n]["overall"] for n in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(names) + 1.5), 4.0))
    xs = list(range(len(names)))
    ax.bar(xs, ours, color="#4C72B0", label="ours")
    official = reference.scores if reference else {}
    marked = [(x, official[n]) for x, n in zip(xs, names) if n in official]
    if marked:
        ax.scatter(
            [x for x, _ in marked],
            [v for _, v in marked],
            color="black",
            marker="_",
            s=400,
            linewidths=2.5,
            label=f"official ({reference.model})" if reference else "official",
            zorder=3,
        )
    ax.set_xticks(xs)
    ax.set_xticklabels([entries[n]["title"] for n in names], rotation=45, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (0–100)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_reports(
    out_dir: str | Path, entries: dict[str, dict], meta: dict[str, Any], reference: Reference | None
) -> dict[str, Path]:
    """Write every report file into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    official = reference.scores if reference else {}
    for name, entry in entries.items():
        entry["model"] = meta.get("model")
        entry["settings"] = meta.get("settings", {})
        entry["reference"] = reference.model if reference else None
        if name in official:
            entry["official"] = official[name]
            entry["delta"] = entry["overall"] - official[name]
        _atomic_write(out / "results" / f"{name}.json", json.dumps(entry, indent=2) + "\n")
    # keyed by benchmark, no timestamps: two runs with the same predictions write the same file
    results = dict(entries)
    paths = {"results": out / "results.json", "report": out / "report.md", "plot": out / "scores.png"}
    _atomic_write(paths["results"], json.dumps(results, indent=2) + "\n")
    _atomic_write(paths["report"], render_markdown(entries, meta, reference))
    plot(entries, reference, paths["plot"])
    logger.info("wrote %s, %s and %s", *paths.values())
    return paths
