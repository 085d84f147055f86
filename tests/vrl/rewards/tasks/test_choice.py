"""Multiple choice (issue bullet 1): one letter recovered, option text accepted, two letters score 0."""

import pytest

from vrl.rewards import score
from vrl.rewards.tasks.choice import parse_options, recover_letter

OPTIONS = ["A. a red car", "B. a blue bus", "C. Vitamin C", "D. nothing"]


def sample(solution="<answer>C</answer>", options=OPTIONS, problem_type="multiple choice"):
    return {"problem_type": problem_type, "solution": solution, "options": options}


@pytest.mark.parametrize(
    "answer",
    [
        "C",
        "(C)",
        "C.",
        "C. Vitamin C",
        "**C**",
        "The answer is C",
        "the answer is C.",
        "Vitamin C",
        "vitamin c",
        "I think C",  # I is not an option letter: ignored
        "C: Vitamin C",
        "Answer: (C) Vitamin C",
        "$C$",
    ],
)
def test_correct_letter_forms(answer):
    result = score(sample(), f"<answer>{answer}</answer>")
    assert result["accuracy"] == 1.0
    assert result["format"] == 1.0


@pytest.mark.parametrize("answer", ["A or C", "B, C", "C. no wait, D"])
def test_two_letters_score_zero(answer):
    result = score(sample(), f"<answer>{answer}</answer>")
    assert result["accuracy"] == 0.0
    assert result["format"] == 0.5


def test_letters_outside_the_options_are_ignored():
    assert score(sample(), "<answer>E</answer>")["accuracy"] == 0.0
    assert score(sample(), "<answer>E</answer>")["format"] == 0.5
    assert score(sample(), "<answer>Z. then C</answer>")["accuracy"] == 1.0


def test_wrong_letter():
    result = score(sample(), "<answer>B</answer>")
    assert result == {"overall": pytest.approx(0.1), "format": 1.0, "accuracy": 0.0}


def test_lone_lowercase_letter_counts_and_option_text_too():
    assert score(sample(), "<answer>c</answer>")["accuracy"] == 1.0
    assert score(sample(), "<answer>a blue bus</answer>")["accuracy"] == 0.0
    assert score(sample(solution="<answer>B</answer>"), "<answer>a blue bus</answer>")["accuracy"] == 1.0


def test_option_text_occurrence_counts_when_no_letter():
    assert score(sample(), "<answer>It is clearly Vitamin C here</answer>")["accuracy"] == 1.0


def test_word_letters_are_not_candidates():
    # letters inside words and "I'm" are not standalone letters; markdown around a letter is fine
    assert recover_letter("I'm sure: D", parse_options(OPTIONS)) == "D"
    assert recover_letter("ABCD", parse_options(OPTIONS)) is None
    assert recover_letter("_B_", parse_options(OPTIONS)) == "B"  # markdown italics


def test_options_whose_texts_are_letters():
    options = ["A. E.", "B. A.", "C. C.", "D. D.", "E. B."]
    assert score(sample("<answer>E</answer>", options), "<answer>E</answer>")["accuracy"] == 1.0
    assert score(sample("<answer>E</answer>", options), "<answer>A</answer>")["accuracy"] == 0.0


def test_option_formats():
    assert parse_options(["A: x", "B: y"]) == {"A": "x", "B": "y"}
    assert parse_options(["(A) x", "(B) y"]) == {"A": "x", "B": "y"}
    assert parse_options(["x", "y"]) == {"A": "x", "B": "y"}
    assert parse_options({"A": "x"}) == {"A": "x"}
    assert parse_options(None) == {}
    assert parse_options(["A. x", "B. y", "B. "]) == {"A": "x", "B": "y"}  # repeated letter: first wins


def test_without_options_any_capital_letter_is_a_letter():
    s = {"problem_type": "multiple_choice", "solution": "<answer>B</answer>"}
    assert score(s, "<answer>(B)</answer>")["accuracy"] == 1.0


def test_truth_given_as_option_text():
    assert score(sample("<answer>a blue bus</answer>"), "<answer>B</answer>")["accuracy"] == 1.0


def test_truth_that_names_no_option_is_a_data_error():
    with pytest.raises(ValueError, match="names no option"):
        score(sample("<answer>Q</answer>"), "<answer>A</answer>")


@pytest.mark.parametrize(
    "answer",
    [
        # an explicit marker wins over letters in the justification
        "C",
        "C. Because the man in A holds B.",
        "(C) because A and B are wrong",
        "C) A is wrong",
        "[C] B and D do not fit",
        "C\nA and B contradict the video.",
        "C - the others (A, B) do not match",
        "The answer is C, since A and B are wrong.",
        "The answer is C, not D",
        "Answer: C. B is close but wrong.",
        "**Answer:** C",
        "**Answer**: (C)",
        "Final answer: C because D is out",
        "The correct option is C; A is a distractor.",
        "C is correct, B is not.",
        "Option A is wrong, so the answer is C",
        "I choose option C over B",  # tier 2 when there is no tier-1 marker
        "A and B are wrong; option C fits",
        "答案是C",
        "答案：C",
        "答案:C",
        "答案为 C。A 和 B 都不对",
        "选C",
        "选项A是错的，答案是C",
        # lower case letters: a lone one, or after a marker
        "c",
        "(c)",
        "c.",
        "the answer is c",
        "answer: c",
        # "A" / "I" as words in prose are not letters
        "A man holds the vitamin, so C",
        "I think it is C",
        "I would say C",
        "\\boxed{C}",
    ],
)
def test_marker_wins_and_words_are_not_letters(answer):
    assert recover_letter(answer, parse_options(OPTIONS)) == "C"
    assert score(sample(), f"<answer>{answer}</answer>")["accuracy"] == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "A or C",
        "B, C",
        "C. no wait, D",  # ends on another letter standing alone: a self-correction
        "C. Actually, D.",
        "The answer is A. Wait, the answer is C.",  # two different markers
        "c or d",  # lower-case letters in prose are not letters
        "A and C",
        "B\nC",
        "(A) and (B)",
        "Answer: A or B",  # a marker whose clause also names another letter
    ],
)
def test_no_marker_or_conflicting_markers_score_zero(answer):
    assert recover_letter(answer, parse_options(OPTIONS)) is None
    result = score(sample(), f"<answer>{answer}</answer>")
    assert (result["accuracy"], result["format"]) == (0.0, 0.5)


def test_a_and_i_as_letters():
    assert recover_letter("A is correct", parse_options(OPTIONS)) == "A"
    assert recover_letter("A man is running", parse_options(OPTIONS)) is None
    assert recover_letter("the answer is a red car", parse_options(OPTIONS)) == "A"  # by its text
    nine = [f"{letter}. option {letter.lower()}x" for letter in "ABCDEFGHI"]
    assert recover_letter("I think the answer is D", parse_options(nine)) == "D"
    assert recover_letter("I or D", parse_options(nine)) is None


def test_a_word_that_starts_an_option_text_is_not_that_option():
    yes_no = parse_options(["A. yes", "B. no"])
    assert recover_letter("no idea", yes_no) is None
    assert recover_letter("No one knows", yes_no) is None
    assert recover_letter("nothing", yes_no) is None
    assert recover_letter("No, the man is not running.", yes_no) == "B"
    assert recover_letter("The answer is no", yes_no) == "B"
    assert recover_letter("no", yes_no) == "B"
    longer = parse_options(["A. no idea", "B. yes"])
    assert recover_letter("no", longer) is None  # the answer only starts option A's text
    assert recover_letter("No idea.", longer) == "A"
    assert recover_letter("yes and no", yes_no) is None  # a connective: both options are named
    assert recover_letter("No One", yes_no) is None
    actions = parse_options(["A. walking", "B. running"])  # other words keep the word-boundary rule
    assert recover_letter("walking slowly", actions) == "A"
    assert recover_letter("walking or running", actions) is None
    counts = parse_options(["A. 12", "B. 15"])
    assert recover_letter("There are 12 people", counts) == "A"  # numbers keep the word-boundary rule
