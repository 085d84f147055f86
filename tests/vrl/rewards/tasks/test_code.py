"""Code (bullet 12): SVG/HTML parse and score by tag recall and length; Python by sandboxed tests."""

import json

import pytest

from vrl.rewards import score
from vrl.rewards.tasks.code import code_kind, extract_code, html_tags, svg_tags

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect x="1" y="1"/><circle r="2"/></svg>'
)


def run(sample, answer):
    return score(sample, f"<answer>{answer}</answer>")


def test_svg_identical_scores_one():
    result = run({"problem_type": "svg-code", "solution": SVG}, SVG)
    assert result["accuracy"] == pytest.approx(1.0)


def test_svg_partial_tags_and_length():
    partial = '<svg xmlns="http://www.w3.org/2000/svg"><rect x="1" y="1"/></svg>'
    result = run({"problem_type": "svg-code", "solution": SVG}, partial)
    gold_len, pred_len = len("".join(SVG.split())), len("".join(partial.split()))
    assert result["accuracy"] == pytest.approx(0.7 * 2 / 3 + 0.3 * pred_len / gold_len)


def test_svg_must_parse():
    result = run({"problem_type": "svg-code", "solution": SVG}, "<svg><rect></svg>")
    assert (result["accuracy"], result["format"]) == (0.0, 0.5)
    assert svg_tags("<html><svg/></html>") is None  # root must be svg
    assert svg_tags('<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg>&a;</svg>') is None


def test_html():
    gold = "<html><body><h1>Hi</h1><p>text</p></body></html>"
    assert run({"problem_type": "html-code", "solution": gold}, gold)["accuracy"] == pytest.approx(1.0)
    assert run({"problem_type": "html-code", "solution": gold}, "just words")["format"] == 0.5
    assert html_tags("<div><span>x</span>") == {"div", "span"}
    assert html_tags("<HTML><!-- <b> --><P>x</p>") == {"html", "p"}
    assert html_tags("a < b and <!-- <p> never closed") is None


def test_fenced_block_is_extracted():
    assert extract_code("text\n```python\nx = 1\n```\nmore") == "x = 1"
    assert extract_code("```\ny = 2\n```") == "y = 2"
    assert extract_code("no fence") == "no fence"


PY = {"problem_type": "code", "solution": "", "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]}


def test_python_fraction_of_tests():
    right = "```python\ndef add(a, b):\n    return a + b\n```"
    half = "```python\ndef add(a, b):\n    return 3\n```"
    assert run(PY, right)["accuracy"] == 1.0
    assert run(PY, half)["accuracy"] == 0.5
    broken = run(PY, "def add(a, b) return")
    assert (broken["accuracy"], broken["format"]) == (0.0, 0.5)


def test_python_tests_in_solution_json_and_io_tests():
    solution = json.dumps({"tests": [{"input": "2\n", "output": "4\n"}, {"input": "5\n", "output": "10"}]})
    sample = {"problem_type": "code", "solution": solution}
    assert run(sample, "n = int(input())\nprint(2 * n)")["accuracy"] == 1.0
    assert run(sample, "print(4)")["accuracy"] == 0.5


def test_code_kind_and_bad_records():
    assert code_kind({"problem_type": "svg-code"}, "") == "svg"
    assert code_kind({"problem_type": "code"}, SVG) == "svg"
    assert code_kind({"problem_type": "code"}, "<div></div>") == "html"
    assert code_kind({"problem_type": "code", "tests": ["assert 1"]}, "") == "python"
    with pytest.raises(ValueError, match="code record"):
        code_kind({"problem_type": "code"}, "def f(): pass")
    with pytest.raises(ValueError, match="non-empty list"):
        run({"problem_type": "code", "solution": "", "tests": []}, "x")
