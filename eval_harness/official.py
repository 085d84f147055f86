"""Officially reported scores to compare against (0–100), copied from the papers named in ``source``.

Only numbers a model's authors published are here; ``report.md`` shows them next to ours with the delta.
Reproductions commonly land 2–14 points lower because frame counts, pixel budgets, prompts and answer
extraction differ: the report records our settings so the gap can be read against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reference:
    model: str
    source: str
    scores: dict[str, float] = field(default_factory=dict)
    """Benchmark name → the reported headline number (same definition as our ``overall``)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Benchmark name → what else was reported (another setting, another source)."""
    patterns: tuple[str, ...] = ()
    """Normalized substrings of a model path that identify the model (reference=auto)."""


REFERENCES: dict[str, Reference] = {
    "Qwen2.5-VL-7B-Instruct": Reference(
        model="Qwen2.5-VL-7B-Instruct",
        source="Qwen2.5-VL technical report, Table 8",
        scores={
            "videomme": 65.1,
            "videommmu": 47.4,
            "mmvu": 50.1,
            "mvbench": 69.6,
            "longvideobench": 56.0,
            "lvbench": 45.3,
            "mlvu_dev": 70.2,
            "tempcompass": 71.7,
            "charades_sta": 43.6,
        },
        notes={
            "videomme": "65.1 without subtitles (71.6 with subtitles)",
            "longvideobench": "56.0 in the report (54.7 on the model card)",
            "charades_sta": "mIoU",
            "mlvu": "the reported MLVU M-Avg (70.2) is compared with the dev split: see MLVU (dev)",
            "mlvu_dev": (
                "M-Avg; the report names no split, 70.2 is in the range of dev-split scores of 7B models "
                "(the test split, with six options per question, scores lower)"
            ),
            "mmvu": "all 1,000 validation questions (multiple choice and open-ended, LLM-judged officially)",
            "mvbench": "all 20 tasks (4,000 questions); the shipped file has 18 of them",
            "tempcompass": "compared with our multi-choice accuracy (the report does not name the format)",
        },
        patterns=("qwen25vl7b",),
    ),
}


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def find_reference(reference: str, model: str) -> Reference | None:
    """``reference``: ``auto`` (match the model path), ``none``, or a key of :data:`REFERENCES`."""
    if reference == "none":
        return None
    if reference != "auto":
        for name, ref in REFERENCES.items():
            if _normalize(name) == _normalize(reference):
                return ref
        raise ValueError(f"Unknown reference {reference!r}. Known: auto, none, {', '.join(REFERENCES)}.")
    path = _normalize(model)
    for ref in REFERENCES.values():
        if any(p in path for p in ref.patterns):
            return ref
    return None
