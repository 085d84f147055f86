"""Finding JSON values inside free text (model answers, ``<think>``-wrapped solutions), in linear time.

One pass over the text pairs every ``{``/``[`` with its closing bracket (string-aware: JSON strings are
skipped, a string broken by a line end or a mismatched closer abandons the brackets still open), so a
decode is tried only where a balanced candidate exists, outermost first. A successful decode consumes its
span (inner brackets are part of it); a failed one moves on to the next candidate. Nesting deeper than
:data:`MAX_DEPTH` is never decoded, so a failed candidate costs at most ``MAX_DEPTH`` re-reads of any
character: the work is bounded by the length of the text, not by a count of attempts, and any number of
bracketed fragments before the answer cannot hide it. ``NaN``/``Infinity`` are rejected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from vrl.rewards.numbers import parse_number

#: candidates nested deeper than this are skipped (no answer nests that deep; bounds the re-reads)
MAX_DEPTH = 32

_PAIRS = {"}": "{", "]": "["}
_SPECIAL = re.compile(r'[{}\[\]"]')
_STRING_BODY = re.compile(r'(?:[^"\\\n]|\\[^\n])*+')


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _candidates(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of balanced bracket spans (``end`` exclusive) with nesting depth ≤ MAX_DEPTH,
    sorted by start. One pass; strings are skipped only while a bracket is open (prose quotes outside
    brackets do not matter)."""
    spans: list[tuple[int, int]] = []
    stack: list[list[int]] = []  # [position, deepest nesting below]
    pos = 0
    while (m := _SPECIAL.search(text, pos)) is not None:
        i = m.start()
        ch = text[i]
        pos = i + 1
        if ch in "{[":
            stack.append([i, 0])
        elif ch in "}]":
            if stack and text[stack[-1][0]] == _PAIRS[ch]:
                start, depth = stack.pop()
                if depth < MAX_DEPTH:
                    spans.append((start, i + 1))
                if stack:
                    stack[-1][1] = max(stack[-1][1], depth + 1)
            else:
                stack.clear()  # a mismatched closer: no open bracket around it can be JSON
        elif stack:  # a quote inside brackets opens a JSON string
            body = _STRING_BODY.match(text, pos)
            assert body is not None  # the pattern matches the empty string
            pos = body.end() + 1
            if body.end() >= len(text) or text[body.end()] != '"':
                stack.clear()  # an unterminated string (end of line or text): the open brackets are not JSON
    spans.sort()
    return spans


def iter_json(text: str) -> Iterator[Any]:
    """JSON objects/arrays found in ``text``, left to right (see the module docstring for the bound)."""
    consumed = 0
    for start, end in _candidates(text):
        if start < consumed:
            continue  # inside a value already decoded
        try:
            value, stop = _DECODER.raw_decode(text[start:end])
        except (ValueError, RecursionError):
            continue
        if stop != end - start:
            continue  # the span is not one JSON value; an inner candidate may be
        consumed = end
        yield value


def last_json(text: str, accept: Any) -> Any:
    """The last JSON value in ``text`` for which ``accept(value)`` is true, or None."""
    found = None
    for value in iter_json(text):
        if accept(value):
            found = value
    return found


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
