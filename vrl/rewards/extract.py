"""Finding the answer in a response and the truth in a solution: linear scans, no backtracking regexes.

The reasoning is never the answer. The reasoning block runs from the first ``<think>`` to the **last**
``</think>`` (from the start of the response when it has no ``<think>``: chat templates often open the
block in the prompt); a ``<think>`` opened after the last ``</think>`` and never closed runs to the end
(a response cut off while reasoning has no answer). Think tags inside the last ``<answer>…</answer>``
pair are part of that answer, not reasoning (some ground truths carry them). Outside the reasoning:

- the answer is the content of the **last** complete ``<answer>…</answer>`` pair (one after the
  reasoning first; else one before a reasoning block that opens with ``<think>``);
- without such a pair, the last balanced ``\\boxed{…}`` after the reasoning, else all the text after the
  reasoning (the whole response when it has no ``</think>`` and no ``<think>``).

So a letter, a number or a draft JSON written while reasoning never supplies a candidate, for any type.
The ground truth is ``solution`` with its ``<answer>`` wrapper and ``$…$`` stripped (no reasoning rule:
some datasets keep the truth inside ``<think>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN = re.compile(r"<answer\s*>", re.IGNORECASE)
_CLOSE = re.compile(r"</answer\s*>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think\s*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)
_BOXED = "\\boxed{"


@dataclass(frozen=True)
class Extraction:
    answer: str
    """The text to judge, stripped of surrounding whitespace."""
    tagged: bool
    """An ``<answer>…</answer>`` pair outside the reasoning was found."""
    think: bool
    """A ``<think>…</think>`` block ends before the answer tag (or anywhere, without a tag)."""


def _last(
    pattern: re.Pattern[str], text: str, start: int = 0, end: int | None = None
) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text, start, len(text) if end is None else end):  # noqa: B007
        pass
    return last


def last_tag_span(text: str, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """``(start, end)`` of the content of the last complete ``<answer>…</answer>`` pair in
    ``text[start:end]``, or None."""
    close = _last(_CLOSE, text, start, end)
    if close is None:
        return None
    opening = _last(_OPEN, text, start, close.start())
    if opening is None:
        return None
    return opening.end(), close.start()


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` whose braces balance, or None."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth = 1
    i = begin = start + len(_BOXED)
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i]
        i += 1
    return None


@dataclass(frozen=True)
class _Regions:
    """Where candidates may come from: ``before`` = [0, before) and ``after`` = [after_start, after_end)."""

    before: int
    after_start: int
    after_end: int


def _regions(text: str) -> _Regions:
    close = _last(_THINK_CLOSE, text)
    if close is None:
        opening = _THINK_OPEN.search(text)
        if opening is None:
            return _Regions(0, 0, len(text))
        return _Regions(0, 0, opening.start())  # unclosed reasoning runs to the end
    first_open = _THINK_OPEN.search(text, 0, close.start())
    reopened = _THINK_OPEN.search(text, close.end())
    return _Regions(
        before=first_open.start() if first_open is not None else 0,
        after_start=close.end(),
        after_end=reopened.start() if reopened is not None else len(text),
    )


def _think_before(text: str, position: int) -> bool:
    think_close = _last(_THINK_CLOSE, text, 0, position)
    return think_close is not None and _THINK_OPEN.search(text, 0, think_close.start()) is not None


def extract(response: str) -> Extraction:
    """Split a model response into the answer to judge and the format facts (see the module docstring)."""
    if not isinstance(response, str):
        response = "" if response is None else str(response)
    last_pair = last_tag_span(response)
    view = response
    if last_pair is not None:  # think tags inside the last answer pair are answer content, not reasoning
        view = response[: last_pair[0]] + " " * (last_pair[1] - last_pair[0]) + response[last_pair[1] :]
    regions = _regions(view)
    span = None
    if last_pair is not None:  # the last pair is usually the answer: search again only when it is not
        if regions.after_start <= last_pair[0] - 1 and last_pair[1] < regions.after_end:
            span = last_pair
        else:
            span = last_tag_span(response, regions.after_start, regions.after_end)
            if span is None and regions.before > 0:
                span = last_tag_span(response, 0, regions.before)
    if span is not None:
        start, end = span
        return Extraction(response[start:end].strip(), tagged=True, think=_think_before(response, start))
    think = _think_before(response, len(response))
    rest = response[regions.after_start : regions.after_end]
    boxed = last_boxed(rest)
    answer = boxed if boxed is not None else rest
    return Extraction(answer.strip(), tagged=False, think=think)


def extract_answer(response: str) -> str:
    """The answer to judge: last ``<answer>`` content, else last ``\\boxed{}``, else the text, never the
    reasoning (see the module docstring)."""
    return extract(response).answer


def strip_math_delimiters(text: str) -> str:
    """Remove surrounding ``$…$``, ``$$…$$``, ``\\(…\\)`` and ``\\[…\\]`` (repeatedly) and whitespace."""
    text = text.strip()
    while True:
        if len(text) >= 2 and text[0] == "$" and text[-1] == "$":
            text = text[1:-1].strip()
        elif len(text) >= 4 and text[:2] in ("\\(", "\\[") and text[-2:] in ("\\)", "\\]"):
            text = text[2:-2].strip()
        else:
            return text


def ground_truth(sample: dict) -> str:
    """The reference answer of a sample: ``solution`` without ``<answer>`` wrapper and ``$…$``.

    Raises ``ValueError`` when the sample has no usable ``solution`` (a data error).
    """
    solution = sample.get("solution")
    if solution is None or isinstance(solution, bool):
        raise ValueError(f"Sample has no 'solution' (keys: {sorted(sample)}).")
    if isinstance(solution, (int, float)):
        solution = repr(solution) if isinstance(solution, float) else str(solution)
    if not isinstance(solution, str):
        raise ValueError(f"Sample 'solution' must be a string, got {type(solution).__name__}.")
    span = last_tag_span(solution)
    text = solution[span[0] : span[1]] if span is not None else solution
    return strip_math_delimiters(text)
