"""Finding JSON values inside free text (model answers, ``<think>``-wrapped solutions), bounded.

At most ``max_attempts`` decodes are tried, each at a ``{`` or ``[``, so a 1 MB answer full of brackets
costs a few linear passes; deep nesting fails fast (``RecursionError`` is caught around the decode).
``NaN``/``Infinity`` are rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from vrl.rewards.numbers import parse_number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def iter_json(text: str, max_attempts: int = 16) -> Iterator[Any]:
    """JSON objects/arrays found in ``text``, left to right, from at most ``max_attempts`` decodes."""
    i = 0
    attempts = 0
    n = len(text)
    while attempts < max_attempts and i < n:
        brace, bracket = text.find("{", i), text.find("[", i)
        starts = [p for p in (brace, bracket) if p >= 0]
        if not starts:
            return
        j = min(starts)
        attempts += 1
        try:
            value, end = _DECODER.raw_decode(text, j)
        except (ValueError, RecursionError):
            i = j + 1
            continue
        yield value
        i = end


def as_number(value: Any) -> float | None:
    """A finite float from a JSON number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = float(value) if abs(value) < 10**300 else math.inf
    elif isinstance(value, str):
        parsed = parse_number(value) if len(value) <= 64 else None
        if parsed is None:
            return None
        value = float(parsed) if abs(parsed) < 10**300 else math.inf
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None
