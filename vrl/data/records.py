"""Load unified records (EasyVideoR1 / Video-R1 JSON or JSONL) for training and validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cache_builder.records import load_records
from vrl.data.media import attach_root
from vrl.rewards import canonical_type

REQUIRED = ("problem", "problem_type", "solution")


def load_files(
    files: list[str], media_root: str = "", problem_types: list[str] | None = None
) -> list[dict[str, Any]]:
    """Records of ``files`` in order, validated; each remembers the directory its media paths are under.

    A record without a required field or with an unknown problem type is a data error: it raises naming
    the file and the record, rather than training on something the reward cannot score.
    """
    keep = {canonical_type(t) for t in problem_types} if problem_types else None
    out: list[dict[str, Any]] = []
    for name in files:
        path = Path(name)
        records = load_records(path)
        for i, rec in enumerate(records):
            missing = [k for k in REQUIRED if k not in rec]
            if missing:
                raise ValueError(f"{path}: record {i} ({rec.get('problem_id', '?')}) lacks {missing}")
            try:
                ptype = canonical_type(str(rec["problem_type"]))
            except ValueError as e:
                raise ValueError(f"{path}: record {i} ({rec.get('problem_id', '?')}): {e}") from None
            if keep is not None and ptype not in keep:
                continue
            rec.setdefault("problem_id", f"{path.stem}-{i}")
            out.append(rec)
        attach_root(records, media_root or path.parent)
    return out
