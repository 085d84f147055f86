"""Reading one number out of an answer, exactly (``Fraction``), in linear time.

Accepted: ``1,234.5`` (thousands separators in groups of three), ``45%`` (the ``%`` is dropped),
``-3``, ``.5``, ``1e3`` (exponent up to 3 digits), fractions ``3/4`` and ``\\frac{3}{4}``, and simple
English number words (``twenty-five``, ``one hundred and five``, ``two thousand``). An answer naming two
different numbers is ambiguous and reads as no number.
"""

from __future__ import annotations

import re
from fractions import Fraction

#: a number token must be short: longer digit runs are not answers (and would make Fraction slow)
MAX_TOKEN_CHARS = 64

_NUMBER = re.compile(
    r"(?<![\w.])"  # not glued to a word or to a preceding decimal point
    r"(?P<sign>[-+\u2212])?"
    r"(?P<mant>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d{1,3}(?!\d))?"
    r"(?:\s*/\s*(?P<den>\d+))?"
    r"(?!\d)"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_LATEX_SPACES = re.compile(r"\\[,!;: ]|\{,\}")

_UNITS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)
}
_SCALES = {"thousand": 1000, "million": 10**6, "billion": 10**9}
_WORD = re.compile(r"[a-z]+")
# which word kind may follow which inside one number ("twenty five", "two hundred and one")
_FOLLOWS = {
    "unit": {None, "ten", "hundred", "scale"},
    "teen": {None, "hundred", "scale"},
    "ten": {None, "hundred", "scale"},
    "hundred": {"unit", "teen"},
    "scale": {"unit", "teen", "ten", "hundred"},
}


def _token_value(m: re.Match[str]) -> Fraction | None:
    if m.end() - m.start() > MAX_TOKEN_CHARS:
        return None
    value = Fraction(m.group("mant").replace(",", "") + (m.group("exp") or ""))
    if m.group("den") is not None:
        if "." in m.group("mant") or m.group("exp"):
            return None
        den = int(m.group("den"))
        if den == 0:
            return None
        value = value / den
    if m.group("sign") in ("-", "\u2212"):
        value = -value
    return value


def _word_kind(word: str) -> str | None:
    if word in _UNITS:
        return "unit" if _UNITS[word] < 10 else "teen"
    if word in _TENS:
        return "ten"
    if word == "hundred":
        return "hundred"
    if word in _SCALES:
        return "scale"
    return None


def _word_numbers(text: str) -> list[Fraction]:
    """Values of the runs of English number words in ``text``; 'and' may follow hundred/thousand."""
    values: list[Fraction] = []
    total = current = 0
    last: str | None = None  # kind of the previous word of the current run; None: no run

    def close() -> None:
        nonlocal total, current, last
        if last is not None:
            values.append(Fraction(total + current))
        total = current = 0
        last = None

    for m in _WORD.finditer(text.lower()):
        word = m.group(0)
        kind = _word_kind(word)
        if word == "and" and last in ("hundred", "scale"):
            continue
        if kind is None or last not in _FOLLOWS[kind] or (word == "zero" and last is not None):
            close()
            if kind not in ("unit", "teen", "ten"):
                continue
        if kind in ("unit", "teen"):
            current += _UNITS[word]
        elif kind == "ten":
            current += _TENS[word]
        elif kind == "hundred":
            current *= 100
        else:
            total += current * _SCALES[word]
            current = 0
        last = "unit" if word == "zero" else kind
        if word == "zero":
            close()
    close()
    return values


def parse_number(text: str) -> Fraction | None:
    """The one number an answer states (all mentions must agree), or None.

    Digits win over words: words are read only when the text has no digit at all.
    """
    if not isinstance(text, str):
        return None
    text = _LATEX_SPACES.sub("", text)
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    value: Fraction | None = None
    seen: set[str] = set()
    for m in _NUMBER.finditer(text):
        token = m.group(0)
        if token in seen:
            continue  # a repeated mention costs no conversion
        seen.add(token)
        current = _token_value(m)
        if current is None or (value is not None and current != value):
            return None  # a malformed number or a second, different one: stop at once
        value = current
    if seen:
        return value
    values = set(_word_numbers(text))
    return values.pop() if len(values) == 1 else None


def round2(value: Fraction) -> Fraction:
    """Round half away from zero to 2 decimals, exactly."""
    scaled = abs(value) * 100
    rounded = Fraction(int(scaled + Fraction(1, 2)), 100)
    return rounded if value >= 0 else -rounded
