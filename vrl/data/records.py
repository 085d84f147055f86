"""Load unified records (EasyVideoR1 / Video-R1 JSON or JSONL) for training and validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cache_builder.records import load_records
from vrl.config import UserError
from vrl.data.media import attach_root
from vrl.rewards import canonical_type

REQUIRED = ("problem", "problem_type", "solution")
#: at most this many bad records are listed in one error
MAX_LISTED = 5


def _problems(rec: dict[str, Any]) -> list[str]:
    """What is wrong with one record for training (empty: nothing); media fields are load_records'."""
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        return [f"lacks {', '.join(repr(k) for k in missing)}"]
    out = []
    if not isinstance(rec["problem"], str):
        out.append(f"has problem={rec['problem']!r}; expected a string")
    if not isinstance(rec["problem_type"], str):
        out.append(f"has problem_type={rec['problem_type']!r}; expected a string")
    else:
        try:
            canonical_type(rec["problem_type"])
        except ValueError as e:
            out.append(f"has an unknown problem_type: {e}")
    return out


def load_files(
    files: list[str], media_root: str = "", problem_types: list[str] | None = None
) -> list[dict[str, Any]]:
    """Records of ``files`` in order, validated; each remembers the directory its media paths are under.

    A record without a required field, with a field of the wrong type or with an unknown problem type is a
    data error: :class:`~vrl.config.UserError` names the file and the records, rather than training on
    something the reward cannot score.
    """
    keep = {canonical_type(t) for t in problem_types} if problem_types else None
    out: list[dict[str, Any]] = []
    for name in files:
        path = Path(name)
        records = load_records(path)
        errors = [
            f"record {i} (problem_id {rec.get('problem_id', '?')}) {msg}"
            for i, rec in enumerate(records)
            for msg in _problems(rec)
        ]
        if errors:
            more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
            raise UserError(f"{path}: invalid records:\n  " + "\n  ".join(errors[:MAX_LISTED]) + more)
        for i, rec in enumerate(records):
            if keep is not None and canonical_type(rec["problem_type"]) not in keep:
                continue
            rec.setdefault("problem_id", f"{path.stem}-{i}")
            out.append(rec)
        attach_root(records, media_root or path.parent)
    return out
