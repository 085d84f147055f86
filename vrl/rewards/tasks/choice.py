"""Multiple choice: recover exactly one option letter from the answer.

Rules, in order (letters outside the options never count):

1. The whole answer is one letter, upper or lower case, with markdown, quotes, ``$``, brackets or a
   period around it (``C``, ``(c)``, ``**C**``, ``$C$``) → that letter.
2. The whole answer is one option ("C. Vitamin C", "C: Vitamin C", or its text "vitamin c") → it.
3. Explicit markers, strongest first; every marker of a tier must name the same letter:
   tier 1: a letter opening the answer and closed by ``)``, ``]``, ``.``/``:`` + space, a dash or a line
   end (``C.``, ``(C)``, ``C)``); "the answer is C", "Answer: C", "correct option is C", "C is correct";
   Chinese 答案是C, 答案为C, 答案：C, 答案:C, 选C, 选择C. Tier 2: "option C", "choice C", "I choose C".
   A marked letter wins over other letters mentioned in a justification ("(C) because A and B are wrong",
   "C. The man in A holds B."), unless the answer ends on a different letter standing alone in its last
   clause, a self-correction ("C. no wait, D", "C. Actually, D") → none.
4. Without a marker: standalone capital letters and occurrences of an option's text. Exactly one
   distinct letter → it; letters win over texts; two different ones → none.

What is not a candidate: letters inside words ("ABCD", "I'm"); "A" and "I" used as words in prose ("A man
is running", "I think") — as letters they are followed by a connective ("A or C", "A is correct"); a letter
after a negation ("not D", "better than B", "C over B"); a lower-case letter anywhere but rules 1 and 3
(it is usually the article "a"); option texts inside the answer are masked first, so "Vitamin C" names
option C, not the letter C. An option whose text is yes/no/true/false reads like a boolean answer: its
word followed directly by another word that is not a connective makes another phrase, so "no idea" and
"no one" are not option "no" ("No, he is not" and "yes and no" still name it); and an answer that only
starts an option's text is not that option ("no" is not option "no idea").
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from vrl.rewards.extract import ground_truth, strip_math_delimiters
from vrl.rewards.registry import Verdict, register_reward

_LETTERS = string.ascii_uppercase
_OPTION = re.compile(r"\s*\(?([A-Z])\s*[.:)]\s*(.*)", re.DOTALL)
# a letter not glued to letters/digits (underscores and asterisks are markdown), not "I'm"
_STANDALONE = re.compile(r"(?<![^\W_])([A-Za-z])(?![^\W_])(?!['\u2019][a-z])")
_EDGE = " \t\r\n*_`'\".,:;!?()[]{}$"
_WRAPPERS = re.compile(r"\\(?:boxed|text|textbf|mathrm|mathbf|fbox)\s*\{([^{}]*)\}")
_NEXT_WORD = re.compile(r"\s+([a-z]+)")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: words after "A" / "I" that make them option letters, not the article / the pronoun
_A_LETTER_WORDS = _words(
    "or and nor is was are were vs versus seems appears looks matches fits describes shows would could "
    "should might must can will then but because since also only best correctly accurately"
)
#: option texts read like a boolean answer: a word right after them makes another phrase ("no idea")
_YES_NO = _words("yes no true false")
_CONNECTIVES = _words("and or but nor because since as so then vs versus")
_I_LETTER_WORDS = _words("or and nor is vs versus seems appears matches fits describes shows")
# a negation and what may stand between it and the letter it negates ("not D", "than (B)", "isn't option C")
_NEGATION = re.compile(
    r"(?:\bnot|\bthan|\bover|\bexcept|\bunlike|\binstead\s++of|\bnor|\bexcluding|n't)\s++"
    r"(?:(?:option|choice)\s++)?+(?:[\(\[]\s*+)?+",
    re.IGNORECASE,
)
_CLAUSE_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+")
_CLAUSE_BREAK = re.compile(r"[,;:.!?\n\u2014\u2013]|\s-\s")
#: the words a final correcting clause may hold besides its letter ("no wait, actually D")
_CORRECTION_WORDS = _words(
    "no wait actually rather or maybe perhaps hmm instead so it is its it's i mean sorry oops correction "
    "make that answer option choice final"
)
# markdown, quotes, $ and whitespace between the words of a marker; possessive: no backtracking
_GAP = r"[\s*_`'\"$]*+"
_L = _GAP + r"[\(\[（]?+" + _GAP + r"(?P<l>[A-Za-z])(?![^\W_])"
_TIER1 = [
    # a letter opening the answer, closed by a bracket, a period/colon + space, a dash or a line end
    re.compile(
        r"^[\s*_`'\"$]*+(?:[\(\[][ \t]*+(?P<l>[A-Za-z])[ \t]*+[\)\]]"
        r"|(?P<l2>[A-Za-z])[ \t]*+(?:[\)\]]|[.:](?=\s|$)|[-–—]\s|\n))"
    ),
    re.compile(
        r"\banswer\b" + _GAP + r"(?:(?:is|would\s++be|should\s++be|=)\b" + _GAP + r")?+"
        r"(?:[:：]" + _GAP + r")?+(?:(?:option|choice)\b" + _GAP + r")?+" + _L,
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:correct|right|best|final)\s++(?:option|choice)\b" + _GAP + r"(?:is\b" + _GAP + r")?+"
        r"(?:[:：]" + _GAP + r")?+" + _L,
        re.IGNORECASE,
    ),
    re.compile(r"(?<![^\W_])[\(\[]?(?P<l>[A-Z])[\)\]]?\s++is\s++(?:the\s++)?(?:correct|right|best)\b"),
    re.compile(
        r"答案\s*+(?:应该|应|就|即)?+\s*+(?:是|为|為|选|選)?+\s*+[:：]?+\s*+[\(（\[]?+\s*+"
        r"(?P<l>[A-Za-z])(?![A-Za-z0-9])"
    ),
    re.compile(r"[选選](?![项項])(?:择|擇)?+\s*+[\(（\[]?+\s*+(?P<l>[A-Za-z])(?![A-Za-z0-9])"),
]
_TIER2 = [
    re.compile(r"\b(?:option|choice)\b" + _L, re.IGNORECASE),
    re.compile(r"[选選][项項]\s*+[\(（\[]?+\s*+(?P<l>[A-Za-z])(?![A-Za-z0-9])"),
    re.compile(r"\b(?:i\s++)?(?:choose|select|pick|go\s++with)\s++(?:option\s++)?+" + _L, re.IGNORECASE),
]


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


def _negated_positions(text: str) -> set[int]:
    """Positions right after a negation: a letter starting there is negated. One linear pass."""
    return {m.end() for m in _NEGATION.finditer(text)}


def _used_as_word(text: str, end: int, letter: str) -> bool:
    """``A`` / ``I`` (either case) ending at ``end`` is the article / the pronoun: a word follows that is
    not one a letter takes ("A man", "I think"; but "A or C", "A is correct")."""
    if letter not in "AI":
        return False
    follower = _NEXT_WORD.match(text, end)
    allowed = _A_LETTER_WORDS if letter == "A" else _I_LETTER_WORDS
    return follower is not None and follower.group(1) not in allowed


def _marked(
    text: str, patterns: list[re.Pattern[str]], valid: set[str], negated: set[int]
) -> tuple[set[str], set[int]]:
    """Letters named by the markers in ``patterns`` and the positions of those letters."""
    letters: set[str] = set()
    positions: set[int] = set()
    for pattern in patterns:
        for m in pattern.finditer(text):
            group = "l" if m.group("l") is not None else "l2"
            raw = m.group(group)
            letter = raw.upper()
            if letter not in valid or m.start(group) in negated:
                continue
            if _used_as_word(text, m.end(group), letter):
                continue  # "the answer is a red car": the article
            letters.add(letter)
            positions.add(m.start(group))
    return letters, positions


def _standalone(text: str, valid: set[str], negated: set[int]) -> list[tuple[int, str]]:
    """(position, letter) of the upper-case standalone option letters that are candidates."""
    found = []
    for m in _STANDALONE.finditer(text):
        letter = m.group(1)
        if letter not in valid or m.start() in negated:
            continue
        if not _used_as_word(text, m.end(), letter):
            found.append((m.start(), letter))
    return found


def _corrected(text: str, last: tuple[int, str], letter: str, positions: set[int]) -> bool:
    """The answer ends on another letter that stands alone in its clause ("C. no wait, D") or shares the
    marked letter's clause ("Answer: A or B"): the marker does not settle the answer."""
    position, other = last
    if other == letter or position in positions or text[position + 1 :].strip(_EDGE):
        return False
    breaks = list(_CLAUSE_BREAK.finditer(text, 0, position))
    clause_start = breaks[-1].end() if breaks else 0
    if any(clause_start <= p < position for p in positions):
        return True
    words = _CLAUSE_WORD.findall(text[clause_start:position].casefold())
    return all(word in _CORRECTION_WORDS for word in words)


def _mask_options(answer: str, options: Mapping[str, str]) -> tuple[str, set[str]]:
    """The answer with option texts blanked out, and the letters whose text occurs as a phrase."""
    masked = answer
    by_text: set[str] = set()
    for letter, text in sorted(options.items(), key=lambda kv: -len(kv[1])):
        text = text.strip()
        if len(text) < 2:
            continue
        yes_no = text.casefold() in _YES_NO
        pattern = re.compile(r"(?<!\w)" + re.escape(text) + r"(?!\w)", re.IGNORECASE)
        pieces = []
        last = 0
        for m in pattern.finditer(masked):
            rest = masked[m.end() : m.end() + 64].lstrip(" \t*_`'\"")
            follower = _NEXT_WORD.match(" " + rest[:16].lower())
            if not yes_no or not rest[:1].isalnum() or (follower and follower.group(1) in _CONNECTIVES):
                by_text.add(letter)
            pieces.append(masked[last : m.start()])
            pieces.append(" ")
            last = m.end()
        pieces.append(masked[last:])
        masked = "".join(pieces)
    return masked, by_text


def recover_letter(answer: str, options: Mapping[str, str]) -> str | None:
    """The single option letter an answer names, or None (see the module docstring for the rules)."""
    valid = set(options) if options else set(_LETTERS)
    answer = _WRAPPERS.sub(r"\1", answer)
    bare = strip_math_delimiters(answer).strip(_EDGE)
    if len(bare) == 1 and bare.upper() in valid:
        return bare.upper()
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
    masked, by_text = _mask_options(answer, options)
    negated = _negated_positions(masked)
    standalone = _standalone(masked, valid, negated)
    for tier in (_TIER1, _TIER2):
        letters, positions = _marked(masked, tier, valid, negated)
        if len(letters) > 1:
            return None
        if letters:
            letter = letters.pop()
            if standalone and _corrected(masked, standalone[-1], letter, positions):
                return None
            return letter
    found = {letter for _, letter in standalone} or by_text
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
