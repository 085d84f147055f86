"""Finding the answer in a response and the truth in a solution: linear scans, no backtracking regexes.

The answer is the content of the **last** ``<answer>…</answer>``; without a tag, the last balanced
``\\boxed{…}``; otherwise the whole response. The ground truth is ``solution`` with its ``<answer>``
wrapper and ``$…$`` stripped.
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
    """An ``<answer>…</answer>`` pair was found."""
    think: bool
    """A ``<think>…</think>`` block ends before the answer tag (or anywhere, without a tag)."""


def _last(pattern: re.Pattern[str], text: str, end: int | None = None) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text, 0, len(text) if end is None else end):  # noqa: B007
        pass
    return last


def last_tag_span(text: str) -> tuple[int, int] | None:
    """``(start, end)`` of the content of the last complete ``<answer>…</answer>`` pair, or None."""
    close = _last(_CLOSE, text)
    if close is None:
        return None
    opening = _last(_OPEN, text, close.start())
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


def extract(response: str) -> Extraction:
    """Split a model response into the answer to judge and the format facts."""
    if not isinstance(response, str):
        response = "" if response is None else str(response)
    span = last_tag_span(response)
    if span is not None:
        start, end = span
        think_close = _last(_THINK_CLOSE, response, start)
        think = think_close is not None and _THINK_OPEN.search(response, 0, think_close.start()) is not None
        return Extraction(response[start:end].strip(), tagged=True, think=think)
    think_close = _last(_THINK_CLOSE, response)
    think = think_close is not None and _THINK_OPEN.search(response, 0, think_close.start()) is not None
    boxed = last_boxed(response)
    answer = boxed if boxed is not None else response
    return Extraction(answer.strip(), tagged=False, think=think)


def extract_answer(response: str) -> str:
    """The answer to judge: last ``<answer>`` content, else last ``\\boxed{}``, else the response."""
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
