"""Free-text answers: open-ended (exact for short truths, ROUGE for long), captions, OCR (1 − WER).

ROUGE follows rouge-score exactly (its tokenizer, Porter stemming of words longer than 3 characters,
F1 of unigrams, bigrams and the longest common subsequence) but computes the LCS bit-parallel, so a long
prediction costs linear time instead of rouge-score's quadratic table. ROUGE-2 is left out of the mean
when the reference has a single token (it has no bigram, so ROUGE-2 is undefined there). The word edit
distance of OCR is bit-parallel too.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter

from nltk.stem import porter
from rouge_score.tokenize import tokenize as rouge_tokenize

from vrl.rewards.extract import ground_truth, strip_math_delimiters
from vrl.rewards.registry import Verdict, register_reward

#: truths up to this many characters are judged by exact match, longer ones by ROUGE
SHORT_ANSWER_CHARS = 10
#: tokens longer than this are not stemmed (the stemmer is not linear on absurd words)
_MAX_STEM_CHARS = 64


class _CachedStemmer:
    """rouge-score's Porter stemmer with a cache: answers repeat words, stemming dominates the cost."""

    def __init__(self) -> None:
        self._porter = porter.PorterStemmer()
        self.stem = functools.lru_cache(maxsize=1 << 16)(self._stem)

    def _stem(self, word: str) -> str:
        return self._porter.stem(word) if len(word) <= _MAX_STEM_CHARS else word


_STEMMER = _CachedStemmer()


def normalize_text(text: str) -> str:
    """Case-folded, punctuation (Unicode category P*) replaced by spaces, whitespace collapsed."""
    chars = [" " if unicodedata.category(c).startswith("P") else c for c in text.casefold()]
    return " ".join("".join(chars).split())


def rouge_tokens(text: str) -> list[str]:
    return rouge_tokenize(text, _STEMMER)


def lcs_length(pred: list[str], ref: list[str]) -> int:
    """Longest common subsequence length, bit-parallel (Allison–Dix/Hyyrö): O(len(pred)) int operations."""
    masks: dict[str, int] = {}
    for i, token in enumerate(ref):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(ref)) - 1
    v = full
    for token in pred:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(ref) - v.bit_count()


def _f1(overlap: int, n_pred: int, n_ref: int) -> float:
    precision = overlap / max(n_pred, 1)
    recall = overlap / max(n_ref, 1)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngram_f1(pred: list[str], ref: list[str], n: int) -> float:
    p = Counter(tuple(pred[i : i + n]) for i in range(len(pred) - n + 1))
    r = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
    overlap = sum(min(count, p[gram]) for gram, count in r.items())
    return _f1(overlap, sum(p.values()), sum(r.values()))


def rouge_f1(prediction: str, reference: str) -> float:
    """Mean of ROUGE-1/2/L F1 as rouge-score computes them (stemming), ROUGE-2 only when defined."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    if not pred or not ref:
        return 0.0
    scores = [_ngram_f1(pred, ref, 1), _f1(lcs_length(pred, ref), len(pred), len(ref))]
    if len(ref) >= 2:
        scores.append(_ngram_f1(pred, ref, 2))
    return sum(scores) / len(scores)


def judge_open_ended(answer: str, truth: str) -> Verdict:
    answer = strip_math_delimiters(answer)
    if not answer:
        return Verdict(0.0, parsed=False)
    if len(truth) <= SHORT_ANSWER_CHARS or not rouge_tokens(truth):
        return Verdict(float(normalize_text(answer) == normalize_text(truth)))
    return Verdict(rouge_f1(answer, truth))


@register_reward(
    "open-ended",
    aliases=("open_ended", "open ended", "free-form", "free_form", "freeform", "video qa", "video_qa", "qa"),
    answer_format="a short answer in words",
    example="a red umbrella",
)
def open_ended(answer: str, sample: dict, config: object) -> Verdict:
    return judge_open_ended(answer, ground_truth(sample))


@register_reward(
    "caption",
    aliases=("captioning", "video caption", "description", "video description"),
    answer_format="a description of the video in full sentences",
    example="A man in a gray cap explains a derivative on a whiteboard.",
)
def caption(answer: str, sample: dict, config: object) -> Verdict:
    return judge_open_ended(answer, ground_truth(sample))


def word_edit_distance(pred: list[str], ref: list[str]) -> int:
    """Levenshtein distance over words, bit-parallel (Myers/Hyyrö): O(len(pred)) big-int operations."""
    m = len(ref)
    if m == 0:
        return len(pred)
    peq: dict[str, int] = {}
    for i, word in enumerate(ref):
        peq[word] = peq.get(word, 0) | (1 << i)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, dist = full, 0, m
    for word in pred:
        eq = peq.get(word, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            dist += 1
        elif mh & top:
            dist -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return dist


def ocr_accuracy(prediction: str, reference: str) -> float:
    """1 − word error rate over lower-cased words, clipped to [0, 1]."""
    pred, ref = prediction.lower().split(), reference.lower().split()
    if not ref:
        return float(not pred)
    wer = word_edit_distance(pred, ref) / len(ref)
    return min(1.0, max(0.0, 1.0 - wer))


@register_reward(
    "ocr",
    aliases=("text recognition", "text_recognition"),
    answer_format="the exact text as it appears",
    example="OPEN 24 HOURS",
)
def ocr(answer: str, sample: dict, config: object) -> Verdict:
    answer = strip_math_delimiters(answer)
    if not answer:
        return Verdict(0.0, parsed=False)
    return Verdict(ocr_accuracy(answer, ground_truth(sample)))
