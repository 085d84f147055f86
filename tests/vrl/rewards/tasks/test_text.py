"""Open-ended (bullet 8), captions and OCR (bullet 10)."""

import random

import pytest
from rouge_score import rouge_scorer

from vrl.rewards import score
from vrl.rewards.tasks.text import lcs_length, normalize_text, ocr_accuracy, rouge_f1, word_edit_distance


def acc(problem_type, solution, answer):
    return score({"problem_type": problem_type, "solution": solution}, f"<answer>{answer}</answer>")[
        "accuracy"
    ]


@pytest.mark.parametrize("problem_type", ["open-ended", "open_ended", "free-form", "video qa"])
def test_short_truth_exact_match_ignoring_case_and_punctuation(problem_type):
    assert acc(problem_type, "<answer>Dolly Zoom</answer>", "dolly zoom.") == 1.0
    assert acc(problem_type, "<answer>open-loop</answer>", "Open loop") == 1.0
    assert acc(problem_type, "<answer>1/2</answer>", "12") == 0.0
    assert acc(problem_type, "<answer>Kitchen</answer>", "the kitchen") == 0.0


def test_long_truth_uses_rouge():
    truth = "The man slices the onions and then fries them in a pan."
    assert acc("open-ended", truth, truth) == pytest.approx(1.0)
    partial = acc("open-ended", truth, "The man fries onions.")
    assert 0.0 < partial < 1.0
    assert acc("open-ended", truth, "zebra") == 0.0


def test_single_token_long_truth_is_not_penalised_by_undefined_rouge2():
    assert acc("open-ended", "<answer>rectangular</answer>", "Rectangular") == 1.0


def test_rouge_matches_rouge_score():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rng = random.Random(0)
    words = ["the", "cats", "running", "ran", "quickly", "over", "lazy", "dogs", "jumped", "a", "of", "is"]
    for _ in range(200):
        pred = " ".join(rng.choice(words) for _ in range(rng.randint(0, 25)))
        ref = " ".join(rng.choice(words) for _ in range(rng.randint(2, 25)))
        expected = scorer.score(ref, pred)
        mean = sum(s.fmeasure for s in expected.values()) / 3
        assert rouge_f1(pred, ref) == pytest.approx(mean, abs=1e-12)


def test_lcs_bit_parallel_matches_dynamic_programming():
    rng = random.Random(1)
    for _ in range(300):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 15))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 15))]
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(len(a)):
            for j in range(len(b)):
                table[i + 1][j + 1] = (
                    table[i][j] + 1 if a[i] == b[j] else max(table[i][j + 1], table[i + 1][j])
                )
        assert lcs_length(a, b) == table[-1][-1]


def test_word_edit_distance_matches_dynamic_programming():
    rng = random.Random(2)
    for _ in range(300):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        prev = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            cur = [i] + [0] * len(b)
            for j, y in enumerate(b, 1):
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
            prev = cur
        assert word_edit_distance(a, b) == prev[-1]


def test_caption_is_scored_like_open_ended():
    truth = "A lecturer writes the derivative of a logarithm on a whiteboard."
    assert acc("caption", truth, truth) == pytest.approx(1.0)


@pytest.mark.parametrize("problem_type", ["ocr", "OCR"])
def test_ocr_one_minus_wer(problem_type):
    assert acc(problem_type, "Open 24 Hours", "OPEN 24 HOURS") == 1.0
    assert acc(problem_type, "open 24 hours daily", "open 24 hours") == pytest.approx(0.75)
    assert acc(problem_type, "open", "closed now and forever") == 0.0  # WER 4 → clipped


def test_ocr_accuracy_edges():
    assert ocr_accuracy("", "") == 1.0
    assert ocr_accuracy("x", "") == 0.0


def test_normalize_text():
    assert normalize_text("  Hello,   World! ") == "hello world"
