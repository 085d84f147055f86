"""OVO-Bench: 12 tasks in 3 modes; overall = mean of the mode scores, a mode = mean of its task accuracies.

Backward tracing (EPM, ASI, HLD) and real-time perception (STU, OJR, ATR, ACR, OCR, FPD) are multiple
choice; forward active responding is REC (a count, exact integer), SSR and CRR (yes/no), each record one
probe of the video up to its query time. SSR and CRR records hold a step or a question without the
question around it, so they get their own wording.
"""

from __future__ import annotations

from typing import Any

from eval_harness.aggregate import Row, Summary, group, mean, pct
from eval_harness.benchmarks.base import Benchmark, default_render, field_in
from vrl.rewards import answer_instruction

MODES = {
    "backward": ("EPM", "ASI", "HLD"),
    "realtime": ("STU", "OJR", "ATR", "ACR", "OCR", "FPD"),
    "forward": ("REC", "SSR", "CRR"),
}
TASKS = tuple(t for tasks in MODES.values() for t in tasks)


def render(record: dict[str, Any], style: str) -> str:
    task = record.get("ovo_task")
    text = str(record.get("problem", "")).strip()
    if task == "SSR":
        lead = (
            "This video shows a procedure carried out step by step. Consider this step: "
            f'"{text}". Is the person performing this step at the end of the video (in the latest frames)?'
        )
    elif task == "CRR":
        lead = (
            f"Question about the end of the video: {text}\n"
            "Do the frames seen so far, above all the latest ones, show enough to answer this question?"
        )
    elif task == "REC":
        lead = f"{text}\nCount every complete repetition of the action shown up to the end of the video."
    else:
        return default_render(record, style)
    return f"{lead}\n{answer_instruction(record['problem_type'], style)}"


def aggregate(rows: list[Row]) -> Summary:
    by_task = group(rows, lambda r: r.get("ovo_task"), TASKS)
    summary = Summary(overall=0.0)
    modes = {}
    for mode, tasks in MODES.items():
        present = [t for t in tasks if t in by_task]
        if not present:
            continue
        for task in present:
            summary.subsets[task] = pct(r.accuracy for r in by_task[task])
            summary.counts[task] = len(by_task[task])
        modes[mode] = mean(summary.subsets[t] for t in present)
        summary.counts[mode] = sum(len(by_task[t]) for t in present)
    summary.subsets.update(modes)
    summary.overall = mean(modes.values())
    return summary


def _mode_matches(record: dict[str, Any]) -> str | None:
    mode = record.get("ovo_category")
    task = record.get("ovo_task")
    if mode is not None and task in TASKS and task not in MODES.get(mode, ()):
        return f"has ovo_task={task!r} in ovo_category={mode!r}; {task} belongs to another mode"
    return None


BENCHMARK = Benchmark(
    name="ovobench",
    title="OVO-Bench",
    category="streaming",
    annotation_file="ovobench.json",
    problem_types=("multiple choice", "REC", "SSR", "CRR"),
    metric="mean of backward / realtime / forward, each the mean of its task accuracies",
    aggregate=aggregate,
    render=render,
    checks=(field_in("ovo_task", TASKS), _mode_matches),
    required_fields=("ovo_task",),
    aliases=("ovo_bench", "ovo"),
    typical_duration_s=300.0,
)
