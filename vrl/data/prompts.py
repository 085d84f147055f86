"""Prompt text for a unified record: the question, its options, and the answer instruction of its type.

The instruction comes from :func:`vrl.rewards.answer_instruction`, so training prompts, evaluation
prompts and the reward parser agree on the answer format by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrl.rewards import answer_instruction, canonical_type

STYLES = ("think", "direct")


def question_text(record: dict[str, Any]) -> str:
    """The problem followed by its options, one per line (options keep their ``A.`` labels)."""
    problem = str(record.get("problem", "")).strip()
    options = record.get("options") or []
    if options:
        return problem + "\nOptions:\n" + "\n".join(str(o).strip() for o in options)
    return problem


def user_text(record: dict[str, Any], style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"unknown prompt style '{style}': known {', '.join(STYLES)}")
    ptype = canonical_type(record["problem_type"])
    return question_text(record) + "\n" + answer_instruction(ptype, style)


def chat_messages(
    record: dict[str, Any], style: str, media_kind: str | Sequence[str] | None, text: str | None = None
) -> list[dict[str, Any]]:
    """One user turn: the media placeholders (``video``/``image`` each, in order, or none) then the text.

    ``text`` replaces the default :func:`user_text` (benchmarks with their own wording)."""
    kinds = [] if media_kind is None else [media_kind] if isinstance(media_kind, str) else list(media_kind)
    content: list[dict[str, Any]] = [{"type": kind} for kind in kinds]
    content.append({"type": "text", "text": user_text(record, style) if text is None else text})
    return [{"role": "user", "content": content}]
