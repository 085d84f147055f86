"""Model output is untrusted: any string scores without raising, in [0, 1], deterministically.

Hypothesis drives adversarial strings (tag soup, brackets, LaTeX, numbers, JSON fragments, control and
astral characters) through every problem type; a fixed corpus adds the big ones (1 MB responses, deep
nesting, pathological LaTeX). The default tier keeps example counts small; ``-m slow`` runs many more.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrl.rewards import RewardConfig, known_types, score

SAMPLES = {
    "multiple choice": {
        "solution": "<answer>C</answer>",
        "options": ["A. cat", "B. Vitamin C", "C. dog", "D. e"],
    },
    "numerical": {"solution": "<answer>12.97</answer>"},
    "regression": {"solution": "<answer>4</answer>"},
    "REC": {"solution": "<answer>3</answer>"},
    "open-ended": {"solution": "<answer>Dolly Zoom</answer>"},
    "caption": {"solution": "A man in a gray cap explains the derivative of a logarithm on a whiteboard."},
    "ocr": {"solution": "OPEN 24 HOURS"},
    "boolean": {"solution": "<answer>Yes</answer>"},
    "SSR": {"solution": "<answer>No</answer>"},
    "CRR": {"solution": "<answer>Yes</answer>"},
    "llava": {"solution": "Response 2"},
    "math": {"solution": "<answer>$\\frac{1}{2}$</answer>"},
    "temporal grounding": {"solution": '<think>{"time": [24.3, 30.4], "boxes": {}}</think><[PLHD]>'},
    "spatial grounding": {"solution": '<answer>{"boxes": [10, 20, 110, 220]}</answer>'},
    "spatial-temporal grounding": {
        "solution": '<answer>{"time": [1.0, 3.5], "boxes": {"1": [1, 2, 30, 40], "2": [2, 3, 31, 41]}}</answer>'
    },
    "tracking": {"solution": '<answer>{"boxes": {"0": [1, 2, 30, 40], "1": [2, 3, 31, 41]}}</answer>'},
    "code-svg": {
        "problem_type": "svg-code",
        "solution": '<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
    },
    "code-html": {"problem_type": "html-code", "solution": "<html><body><p>x</p></body></html>"},
    "code-python": {
        "problem_type": "code",
        "solution": "",
        "tests": ["assert f(1) == 2", {"input": "1", "output": "2"}],
    },
}
FAST = [name for name in SAMPLES if name not in ("math", "code-python")]
SLOW = ["math", "code-python"]
CONFIG = RewardConfig(timeout_s=3.0, sandbox_cpu_s=2)

FRAGMENTS = [
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    "<ANSWER >",
    "\\boxed{",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    '"time"',
    '"boxes"',
    ":",
    ",",
    " to ",
    " - ",
    "1e999",
    "NaN",
    "Infinity",
    "-0",
    "1/0",
    "3/4",
    "45%",
    "1,234",
    "twenty-five",
    "00:03",
    "1:02:03",
    "1e3",
    "^2",
    "**2",
    " cm^{2}",
    "\\times 10^{",
    "\\text{",
    "%",
    "\u221e",
    "the answer is ",
    "Answer: ",
    "option ",
    "\u7b54\u6848\u662f",
    "\u9009",
    "no idea",
    "Yes, ",
    "A",
    "B",
    "(C)",
    "**D**",
    "I'm",
    "yes",
    "No",
    "Response 1",
    "tie",
    "\\frac{",
    "\\sqrt{",
    "^{",
    "$",
    "$$",
    "\\(",
    "```python\n",
    "```",
    "import os\n",
    "while True: pass\n",
    "<svg>",
    "</svg>",
    "<!DOCTYPE x [<!ENTITY a 'b'>]>",
    "&a;",
    "<p>",
    "\x00",
    "\ud83d\ude00",
    "\u2212",
    "\n",
    " ",
    "\t",
    "0" * 70,
    "9" * 5000,
]
adversarial = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=60).map("".join),
)


def sample_for(name: str) -> dict:
    base = dict(SAMPLES[name])
    base.setdefault("problem_type", name)
    return base


def check(name: str, response: str) -> None:
    first = score(sample_for(name), response, CONFIG)
    assert {"overall", "format", "accuracy"} <= set(first)
    for key, value in first.items():
        assert isinstance(value, float), key
        assert 0.0 <= value <= 1.0, (key, value)
    assert first["format"] in (0.0, 0.5, 1.0)
    second = score(sample_for(name), response, CONFIG)
    if "timeout" not in first and "timeout" not in second:
        assert first == second


FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_SLOW_TYPES = settings(FUZZ, max_examples=10)
FUZZ_BIG = settings(FUZZ, max_examples=1500, derandomize=False)
FUZZ_BIG_SLOW_TYPES = settings(FUZZ_BIG, max_examples=300)


@pytest.mark.parametrize("name", FAST)
@FUZZ
@given(response=adversarial)
def test_fast_types_never_raise(name, response):
    check(name, response)


@pytest.mark.parametrize("name", FAST)
@FUZZ
@given(response=adversarial)
def test_fast_types_never_raise_inside_answer_tags(name, response):
    check(name, f"<think>x</think><answer>{response}</answer>")


@pytest.mark.parametrize("name", SLOW)
@FUZZ_SLOW_TYPES
@given(response=adversarial)
def test_slow_types_never_raise(name, response):
    check(name, f"<answer>{response}</answer>")


def test_every_type_is_fuzzed():
    fuzzed = {name if name in known_types() else "code" for name in SAMPLES}
    assert fuzzed == set(known_types())


MEGABYTE = 1 << 20
BIG = {
    "random_1mb": "".join(chr(32 + (i * 7919) % 95) for i in range(MEGABYTE)),
    "brackets_1mb": "[" * MEGABYTE,
    "braces_1mb": "{" * MEGABYTE,
    "json_prefix_1mb": '{"time": [' * (MEGABYTE // 10),
    "answer_tags_1mb": "<answer>" * (MEGABYTE // 8),
    "closing_tags_1mb": "</answer>" * (MEGABYTE // 9),
    "boxed_1mb": "\\boxed{" * (MEGABYTE // 7),
    "digits_1mb": "7" * MEGABYTE,
    "letters_1mb": "A B " * (MEGABYTE // 4),
    "spaces_then_number": "5" + " " * MEGABYTE + "/",
    "tagged_1mb": "<answer>" + "C " * (MEGABYTE // 2) + "</answer>",
    "tagged_64k": "<answer>" + "the cat " * 8000 + "</answer>",
    "nested_latex": "<answer>" + "\\frac{" * 300 + "1" + "}{2}" * 300 + "</answer>",
    "deep_sqrt": "<answer>" + "\\sqrt{" * 500 + "2" + "}" * 500 + "</answer>",
    "tower": "<answer>9^{9^{9^{9^{9^{9^{9}}}}}}</answer>",
    "deep_json": "<answer>" + '{"a":' * 5000 + "1" + "}" * 5000 + "</answer>",
    "deep_list": "<answer>" + "[" * 100000 + "]" * 100000 + "</answer>",
    "code_bomb": "<answer>```python\nimport os\nwhile True:\n    os.fork()\n```</answer>",
    "html_open_tags_64k": "<answer>" + "<a" * 30000 + "</answer>",
    "html_comments_64k": "<answer>" + "<!--" * 15000 + "</answer>",
    "numbers_64k": "<answer>" + "".join(f"{i}, " for i in range(9000)) + "</answer>",
    "xml_bomb": '<answer><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><svg>&b;</svg></answer>',
}


@pytest.mark.parametrize("big", sorted(BIG))
def test_big_and_pathological_responses_fast_types(big):
    for name in FAST:
        check(name, BIG[big])


@pytest.mark.parametrize(
    "big", ["tagged_64k", "nested_latex", "deep_sqrt", "tower", "code_bomb", "random_1mb"]
)
@pytest.mark.parametrize("name", SLOW)
def test_big_and_pathological_responses_slow_types(name, big):
    check(name, BIG[big])


def flood(fragment: str, size: int = 60000) -> str:
    """``fragment`` repeated to ``size`` characters inside answer tags (under max_answer_chars)."""
    return "<answer>" + (fragment * (size // max(1, len(fragment)) + 1))[:size] + "</answer>"


@pytest.mark.parametrize("fragment", ["-0", "45%", "<a", "</", "[", '{"time": [', "A ", "1 to 2 "])
def test_fragment_floods_fast_types(fragment):
    for name in FAST:
        check(name, flood(fragment))


@pytest.mark.slow
@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_every_fragment_flood(fragment):
    for name in FAST:
        check(name, flood(fragment))


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST)
@FUZZ_BIG
@given(response=adversarial)
def test_many_adversarial_strings(name, response):
    check(name, f"<answer>{response}</answer>" if len(response) % 2 else response)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
@FUZZ_BIG_SLOW_TYPES
@given(response=adversarial)
def test_many_adversarial_strings_slow_types(name, response):
    check(name, f"<answer>{response}</answer>" if len(response) % 2 else response)


def test_json_responses_roundtrip_through_the_worker():
    # lone surrogates and control characters survive the JSON pipe to the math worker
    check("math", "<answer>\ud800\x00\\frac{1}{2}</answer>")
    json.dumps("\ud800")
