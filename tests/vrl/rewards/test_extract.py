"""Where the answer is: last <answer> tag, else last \\boxed{}, else the whole response; truth stripping."""

import pytest

from vrl.rewards.extract import extract, extract_answer, ground_truth, last_boxed, strip_math_delimiters


@pytest.mark.parametrize(
    ("response", "answer", "tagged"),
    [
        ("<answer>B</answer>", "B", True),
        ("<answer>A</answer> on second thought <answer> C </answer>", "C", True),
        ("<think>x</think><ANSWER>D</Answer>", "D", True),
        ("<answer>A</answer> then <answer>B", "A", True),  # an unclosed tag does not count
        ("so \\boxed{1} or rather \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", False),
        ("\\boxed{unbalanced", "\\boxed{unbalanced", False),
        ("  plain text  ", "plain text", False),
        ("", "", False),
    ],
)
def test_answer_extraction(response, answer, tagged):
    found = extract(response)
    assert found.answer == answer
    assert found.tagged is tagged
    assert extract_answer(response) == answer


def test_tag_wins_over_boxed():
    assert extract_answer("\\boxed{7} <answer>8</answer>") == "8"


def test_think_must_close_before_the_answer():
    assert extract("<think>a</think><answer>B</answer>").think
    assert not extract("<answer>B</answer><think>a</think>").think
    assert not extract("<answer>B</answer>").think
    assert not extract("</think><answer>B</answer>").think


def test_non_string_response_is_empty_or_text():
    assert extract(None).answer == ""
    assert extract(42).answer == "42"


def test_last_boxed_nested_braces():
    assert last_boxed("\\boxed{a{b}c}") == "a{b}c"
    assert last_boxed("no box") is None


@pytest.mark.parametrize(
    ("solution", "truth"),
    [
        ("<answer>B</answer>", "B"),
        ("<answer>$\\frac{1}{2}$</answer>", "\\frac{1}{2}"),
        ("$$x^2$$", "x^2"),
        ("\\(3\\)", "3"),
        ("plain", "plain"),
        (12.97, "12.97"),
        (4, "4"),
    ],
)
def test_ground_truth_strips_wrapper_and_dollars(solution, truth):
    assert ground_truth({"solution": solution}) == truth


def test_ground_truth_missing_is_a_data_error():
    with pytest.raises(ValueError, match="solution"):
        ground_truth({"problem_type": "numerical"})
    with pytest.raises(ValueError):
        ground_truth({"solution": ["a"]})


def test_strip_math_delimiters_keeps_inner_dollars():
    assert strip_math_delimiters("$a$ and $b$") == "a$ and $b"


@pytest.mark.parametrize(
    ("response", "answer", "tagged"),
    [
        ("<think>The answer might be A</think>B", "B", False),
        ("<think>maybe 5</think> The answer is 7", "The answer is 7", False),
        ("<think>A or B</think>", "", False),  # reasoning only: nothing to judge
        ("reasoning about A, no opener </think> C", "C", False),  # the chat template opened <think>
        ("<think>first</think> mid A <think>second</think> C", "C", False),  # up to the LAST </think>
        ("<think> still thinking about A", "", False),  # cut off while reasoning
        ("<think>x</think> C <think> more about A", "C", False),  # unclosed block after the answer
        ("<think>draft <answer>A</answer> hmm</think> B", "B", False),  # a tag in the reasoning is a draft
        ("<think>so \\boxed{1}</think> \\boxed{2}", "2", False),
        ("<think>\\boxed{1}</think> 2", "2", False),
        ("<answer>B</answer><think>late</think>", "B", True),  # a block after the answer is no reasoning
        ("<think>a</think><answer>B</answer>", "B", True),
        ("<think>a</think><answer><think>{x}</think> y</answer>", "<think>{x}</think> y", True),
    ],
)
def test_reasoning_never_supplies_the_answer(response, answer, tagged):
    found = extract(response)
    assert (found.answer, found.tagged) == (answer, tagged)
