"""Multiple choice: recover exactly one option letter from the answer.

Candidates are every standalone capital letter that names an option (``C``, ``(C)``, ``C.``, ``**C**``,
"the answer is C") and every occurrence of an option's exact text. Letters outside the options are
ignored; two different candidates mean no answer. Before scanning, a bare letter wins, then the whole
answer equal to one option ("C. text", then its text), so texts containing capitals ("Vitamin C") or
options whose texts are letters ("A. E.") do not conflict.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from vrl.rewards.extract import ground_truth
from vrl.rewards.registry import Verdict, register_reward

_LETTERS = string.ascii_uppercase
_OPTION = re.compile(r"\s*\(?([A-Z])\s*[.:)]\s*(.*)", re.DOTALL)
# a capital letter not glued to letters/digits (underscores and asterisks are markdown), not "I'm"
_STANDALONE = re.compile(r"(?<![^\W_])([A-Z])(?![^\W_])(?!['\u2019][a-z])")
_EDGE = " \t\r\n*_`'\".,:;!?()[]{}"


def parse_options(options: object) -> dict[str, str]:
    """Option letter → option text, from ``["A. x", "B: y"]``, ``{"A": "x"}`` or unlabeled ``["x", "y"]``."""
    if isinstance(options, Mapping):
        return {str(k).strip().upper(): str(v).strip() for k, v in options.items()}
    if not isinstance(options, (list, tuple)) or not options:
        return {}
    items = [str(o) for o in options]
    matches = [_OPTION.fullmatch(o) for o in items]
    if all(matches):
        parsed: dict[str, str] = {}
        for m in matches:
            parsed.setdefault(
                m.group(1), m.group(2).strip()
            )  # a repeated letter is a data glitch: first wins
        return parsed
    return {_LETTERS[i]: o.strip() for i, o in enumerate(items[: len(_LETTERS)])}


def _norm(text: str) -> str:
    return " ".join(text.strip(_EDGE).casefold().split())


def recover_letter(answer: str, options: Mapping[str, str]) -> str | None:
    """The single option letter an answer names, or None (nothing or two different letters)."""
    valid = set(options) if options else set(_LETTERS)
    bare = answer.strip(_EDGE)
    if len(bare) == 1 and bare in valid:
        return bare
    whole = _norm(answer)
    if whole:
        for candidates in (
            {
                letter
                for letter, text in options.items()
                if whole in (_norm(f"{letter}. {text}"), _norm(f"{letter}: {text}"))
            },
            {letter for letter, text in options.items() if whole == _norm(text)},
        ):
            if len(candidates) == 1:
                return candidates.pop()
    masked = answer
    by_text: set[str] = set()
    for letter, text in sorted(options.items(), key=lambda kv: -len(kv[1])):
        if len(text.strip()) < 2:
            continue
        pattern = re.compile(r"(?<!\w)" + re.escape(text.strip()) + r"(?!\w)", re.IGNORECASE)
        masked, count = pattern.subn(" ", masked)
        if count:
            by_text.add(letter)
    letters = {m.group(1) for m in _STANDALONE.finditer(masked)} & valid
    found = letters or by_text
    return next(iter(found)) if len(found) == 1 else None


@register_reward(
    "multiple choice",
    aliases=("multiple_choice", "multiple-choice", "mc", "choice"),
    answer_format="the letter of the correct option only",
    example="B",
)
def multiple_choice(answer: str, sample: dict, config: object) -> Verdict:
    options = parse_options(sample.get("options"))
    truth = ground_truth(sample)
    gold = truth if len(truth) == 1 and truth in (options or _LETTERS) else recover_letter(truth, options)
    if gold is None:
        raise ValueError(f"Multiple-choice solution {truth!r} names no option of {sorted(options)}.")
    pred = recover_letter(answer, options)
    return Verdict(float(pred == gold), parsed=pred is not None)
