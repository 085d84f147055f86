"""Math: symbolic equivalence with math-verify, under a time limit, in a scoring worker process.

math-verify parses with sympy (whose ``parse_expr`` evaluates generated code) and bounds time with
``signal.alarm``, which works only in a main thread. So this type is ``isolated``: :mod:`vrl.rewards.
scoring` always runs it in a worker process (:mod:`vrl.rewards.workers`), where it runs in the main thread
under an interval timer, the worker has an address-space limit, and the parent kills it at ``timeout_s``.

Before parsing, both sides are normalized for what math-verify does not read by itself: ``∞`` and the
word "infinity" become ``\\infty``; Python powers ``x**2`` / ``2**(1/2)`` become ``x^{2}`` / ``2^{(1/2)}``;
``7.2e6`` becomes ``7.2 \\times 10^{6}``; ``\\text{5 cm}`` (number inside the unit text) becomes
``5\\text{ cm}``. Units inside ``\\text{}``/``\\mathrm{}`` after a number are dropped by math-verify's
own unit normalization (``LatexExtractionConfig``'s ``NormalizationConfig(units=True)``, its default),
and ``45\\%`` equals 0.45 and 45 there.

What it cannot do: a bare unit outside ``\\text{}`` is read as variables (``2.83 cm^2`` is
``2.83·c·m²``, ``8.4 m/s^2`` is ``8.4·m/s²``), so such answers do not match a plain number; sympy's
``oo`` is the product ``o·o``; Python function calls (``sqrt(2)``) are not LaTeX and are not rewritten.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from typing import Any

from vrl.rewards.extract import ground_truth
from vrl.rewards.registry import Verdict, register_reward

#: longer answers are not parsed (math-verify's cost grows fast with the length of crafted LaTeX)
MAX_MATH_CHARS = 2000
#: share of timeout_s the worker gives math-verify before abandoning the comparison itself
_INNER_SHARE = 0.8


class _MathTimeout(BaseException):
    """Raised by the interval timer; a BaseException so library ``except Exception`` cannot swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _MathTimeout


_INFINITY = re.compile(r"\u221e|(?<![A-Za-z\\])infinity(?![A-Za-z])", re.IGNORECASE)
_PY_POWER = re.compile(r"\*\*\s*(\([^()]{0,200}\)|[-+]?[\w.]+)")
_E_NOTATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([-+]?\d{1,3})(?![\w.])")
_TEXT_NUMBER = re.compile(r"\\(text|mathrm|textrm|mbox)\s*\{\s*([-+]?\d+(?:\.\d+)?)\s*([^{}]*)\}")


def normalize_math(text: str) -> str:
    """Rewrite what math-verify does not read (see the module docstring)."""
    text = _INFINITY.sub(r"\\infty ", text)
    text = _PY_POWER.sub(lambda m: "^{" + m.group(1) + "}", text)
    text = _E_NOTATION.sub(r"\1 \\times 10^{\2}", text)
    return _TEXT_NUMBER.sub(
        lambda m: m.group(2) + (f"\\{m.group(1)}{{ {m.group(3).strip()}}}" if m.group(3).strip() else ""),
        text,
    )


def _parse(text: str) -> list:
    from math_verify import parse

    text = normalize_math(text)

    if any(marker in text for marker in ("$", "\\(", "\\[", "\\boxed")):
        return parse(text, parsing_timeout=None)
    # an extracted answer is the expression itself: read it as LaTeX first ("2\\sqrt{2}" is not "2")
    return parse(f"${text}$", parsing_timeout=None) or parse(text, parsing_timeout=None)


def _equivalent(answer: str, truth: str) -> tuple[bool, bool]:
    """(answer parsed, equivalent to truth); ValueError if the truth does not parse."""
    from math_verify import verify

    gold = _parse(truth)
    if not gold:
        raise ValueError(f"math solution {truth!r} does not parse as math.")
    try:  # untrusted: any failure of the parser on model output is a wrong answer
        pred = _parse(answer)
        return bool(pred), bool(pred) and bool(verify(gold, pred, timeout_seconds=None))
    except Exception:
        return False, False


def judge_math(answer: str, truth: str, time_limit: float) -> Verdict:
    """Equivalence of ``answer`` and ``truth`` within ``time_limit`` seconds (main thread: a timer)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    if len(answer) > MAX_MATH_CHARS or not answer.strip():
        return Verdict(0.0, parsed=False)
    if threading.current_thread() is not threading.main_thread():
        parsed, same = _equivalent(answer, truth)  # no timer off the main thread: the caller bounds time
        return Verdict(float(same), parsed=parsed)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        parsed, same = _equivalent(answer, truth)
    except _MathTimeout:
        return Verdict(0.0, parsed=False, extras={"timeout": 1.0})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return Verdict(float(same), parsed=parsed)


@register_reward(
    "math",
    aliases=("mathematics", "math word problem"),
    answer_format="the final result as a LaTeX expression",
    example="\\frac{3}{4}",
    isolated=True,
)
def math_equivalence(answer: str, sample: dict, config: Any) -> Verdict:
    timeout_s = getattr(config, "timeout_s", 5.0)
    return judge_math(answer, ground_truth(sample), _INNER_SHARE * timeout_s)
