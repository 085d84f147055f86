"""Prompt instructions ask for exactly what each type parses."""

import pytest

from vrl.rewards import answer_instruction, known_types, score


@pytest.mark.parametrize("problem_type", known_types())
@pytest.mark.parametrize("style", ["think", "direct"])
def test_every_type_has_an_instruction_with_a_parsable_example(problem_type, style):
    text = answer_instruction(problem_type, style)
    assert "<answer>" in text
    assert ("<think>" in text) == (style == "think")


def test_examples_parse_as_their_type():
    # the example in the instruction must get format 1.0 from the reward itself
    samples = {
        "multiple choice": {"solution": "B", "options": ["A. x", "B. y"]},
        "numerical": {"solution": "12.5"},
        "regression": {"solution": "3.2"},
        "REC": {"solution": "3"},
        "boolean": {"solution": "yes"},
        "SSR": {"solution": "yes"},
        "CRR": {"solution": "no"},
        "llava": {"solution": "Response 1"},
        "temporal grounding": {"solution": '{"time": [12.5, 17.0]}'},
        "spatial grounding": {"solution": '{"boxes": [48, 120, 210, 305]}'},
        "spatial-temporal grounding": {
            "solution": '{"time": [3.0, 5.5], "boxes": {"3": [40, 60, 120, 200]}}'
        },
        "tracking": {"solution": '{"boxes": {"0": [40, 60, 120, 200]}}'},
        "open-ended": {"solution": "a red umbrella"},
        "caption": {"solution": "A man in a gray cap explains a derivative on a whiteboard."},
        "ocr": {"solution": "OPEN 24 HOURS"},
        "math": {"solution": "\\frac{3}{4}"},
        "code": {"solution": "", "tests": ["assert solve(1) == 2"]},
    }
    from vrl.rewards import get_type

    for problem_type, sample in samples.items():
        example = get_type(problem_type).example
        result = score({"problem_type": problem_type, **sample}, f"<answer>{example}</answer>")
        assert result["format"] == 1.0, problem_type
        assert result["accuracy"] == pytest.approx(1.0), problem_type


def test_unknown_style_or_type():
    with pytest.raises(ValueError, match="style"):
        answer_instruction("numerical", "shout")
    with pytest.raises(ValueError, match="Known types"):
        answer_instruction("nope")
