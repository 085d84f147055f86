"""Reading one number out of an answer, exactly (``Fraction``), in linear time.

Accepted: ``1,234.5`` (thousands separators in groups of three; ``1{,}234`` and ``1\\,234`` in LaTeX),
``-3``, ``.5``, fractions ``3/4`` and ``\\frac{3}{4}``, scientific notation (``1e3``, ``1.5E-3``, ``10^3``,
``10**3``, ``7.2 \\times 10^{6}``, ``7.2 × 10⁶``, ``7.2*10**6``; exponents up to 3 digits), a unit after
the number, also with an exponent or a slash (``2.83 cm^2``, ``8.4 m/s^2``, ``5 m·s⁻²``: an exponent
attached to a letter, ``}`` or ``)`` belongs to a unit and is dropped), ``\\text{…}`` / ``\\mathrm{…}``
around the number or the unit (``\\text{2.83 cm}^2``), and simple English number words (``twenty-five``,
``one hundred and five``; read only when the text has no digit).

Percentages: ``45%`` (also ``45\\%``, ``45 percent``) has two readings, 45 and 0.45, so it matches a
gold written either way (gold ``45`` and gold ``0.45``); a gold written as ``45%`` likewise matches an
answer ``45`` or ``0.45``. :func:`parse_number` returns the value as written (45).

An answer naming two different numbers is ambiguous and reads as no number; mentions agree when their
readings meet (``0.45, i.e. 45%`` reads 0.45).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

#: a number token must be short: longer digit runs are not answers (and would make Fraction slow)
MAX_TOKEN_CHARS = 64
#: a power whose value exceeds 10**MAX_POWER_DIGITS is not an answer
MAX_POWER_DIGITS = 400

_SIGN = r"[-+\u2212]"


def _exponent(name: str) -> str:
    """An exponent of up to 3 digits, braced (``{-3}``) or bare (``-3``), captured as name1 / name2."""
    return rf"(?:\{{\s*(?P<{name}1>{_SIGN}?\d{{1,3}})\s*\}}|(?P<{name}2>{_SIGN}?\d{{1,3}})(?!\d))"


_NUMBER = re.compile(
    r"(?<![\w.^])(?<!\*\*)"  # not glued to a word, a decimal point or an exponent sign
    rf"(?P<sign>{_SIGN})?"
    r"(?P<mant>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:"
    rf"(?P<exp>[eE]{_SIGN}?\d{{1,3}}(?!\d))"
    rf"|\s*(?:\\times|\\cdot|×|·|\*|x)\s*10\s*(?:\^|\*\*)\s*{_exponent('sci')}"
    rf"|\s*(?:\^|\*\*)\s*{_exponent('pow')}"
    r")?"
    r"(?:\s*/\s*(?P<den>\d+))?"
    r"(?!\d)"
    r"(?P<pct>\s*(?:\\?%|percent\b|per\s?cent\b))?"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_LATEX_SPACES = re.compile(r"\\[,!;: ]|\{,\}")
_LATEX_TEXT = re.compile(
    r"\\(?:text|textrm|textbf|textit|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}"
)
# an exponent attached to a unit (a letter, or a closing brace/parenthesis): "cm^2", "s^{-2}", "m**2"
_UNIT_EXPONENT = re.compile(
    r"(?<=[A-Za-z}\)\]])\s*(?:\^|\*\*)\s*(?:\{[^{}]{0,16}\}|[-+\u2212]?\d+(?:\.\d+)?)"
)
_SUPERSCRIPTS = re.compile("[\u2070\u00b9\u00b2\u00b3\u2074-\u2079\u207a\u207b]+")
_SUPERSCRIPT_DIGITS = str.maketrans(
    "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207a\u207b", "0123456789+-"
)

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


def _signed_int(text: str) -> int:
    return int(text.replace("\u2212", "-"))


def _token_value(m: re.Match[str]) -> Fraction | None:
    """The value of one number token as written (``%`` not applied), or None when malformed or huge."""
    if m.end() - m.start() > MAX_TOKEN_CHARS:
        return None
    if m.string[m.end() : m.end() + 8].lstrip().startswith(("^", "**")):
        return None  # a power that did not parse ("9^{9^{9}}"): not a number we can read
    mant = m.group("mant").replace(",", "")
    value = Fraction(mant)
    exp = m.group("exp")
    sci = m.group("sci1") or m.group("sci2")
    power = m.group("pow1") or m.group("pow2")
    if exp is not None:
        value *= Fraction(10) ** _signed_int(exp[1:])
    elif sci is not None:
        value *= Fraction(10) ** _signed_int(sci)
    elif power is not None:
        e = _signed_int(power)
        if value == 0 and e < 0:
            return None
        if value != 0 and abs(e) * math.log10(abs(value)) > MAX_POWER_DIGITS:
            return None
        value = value**e
    if m.group("den") is not None:
        if "." in mant or exp or sci or power:
            return None
        den = int(m.group("den"))
        if den == 0:
            return None
        value = value / den
    if m.group("sign") in ("-", "\u2212"):
        value = -value
    return value


def _readings(m: re.Match[str]) -> tuple[Fraction, ...] | None:
    """What a token can mean: its value, and for a percentage also value / 100."""
    value = _token_value(m)
    if value is None:
        return None
    return (value, value / 100) if m.group("pct") and value != 0 else (value,)


def normalize_number_text(text: str) -> str:
    """LaTeX and unit noise removed so that the number regex sees plain numbers (see the docstring)."""
    text = _SUPERSCRIPTS.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPT_DIGITS) + "}", text)
    text = _LATEX_TEXT.sub(lambda m: " " + m.group(1) + " ", text)
    text = _LATEX_SPACES.sub("", text)
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    return _UNIT_EXPONENT.sub("", text)


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


def parse_readings(text: str) -> tuple[Fraction, ...] | None:
    """The readings of the one number an answer states (all mentions must agree), or None.

    One reading for a plain number, two for a percentage (``45%`` → 45 and 0.45), the value as written
    first. Mentions agree when their readings meet; the result keeps the common ones. Digits win over
    words: words are read only when the text has no digit at all.
    """
    if not isinstance(text, str):
        return None
    text = normalize_number_text(text)
    readings: tuple[Fraction, ...] | None = None
    seen: set[str] = set()
    for m in _NUMBER.finditer(text):
        token = m.group(0).strip()
        if token in seen:
            continue  # a repeated mention costs no conversion
        seen.add(token)
        current = _readings(m)
        if current is None:
            return None  # a malformed number: stop at once
        readings = current if readings is None else tuple(r for r in readings if r in current)
        if not readings:
            return None  # a second, different number: stop at once
    if seen:
        return readings
    values = set(_word_numbers(text))
    return (values.pop(),) if len(values) == 1 else None


def parse_number(text: str) -> Fraction | None:
    """The one number an answer states, as written (``45%`` → 45), or None; see :func:`parse_readings`."""
    readings = parse_readings(text)
    return readings[0] if readings else None


def round2(value: Fraction) -> Fraction:
    """Round half away from zero to 2 decimals, exactly."""
    scaled = abs(value) * 100
    rounded = Fraction(int(scaled + Fraction(1, 2)), 100)
    return rounded if value >= 0 else -rounded
