"""Prompt instructions that ask for exactly the answer format the reward parses.

The trainer's prompt templates and the eval harness call :func:`answer_instruction`, so a change to what a
type parses changes what the prompts ask for.
"""

from __future__ import annotations

from vrl.rewards.registry import get_type

STYLES = ("think", "direct")

_THINK = (
    "First think step by step inside <think> </think> tags, then give your final answer inside "
    "<answer> </answer> tags."
)
_DIRECT = "Give only your final answer inside <answer> </answer> tags, with no other text."


def answer_instruction(problem_type: str, style: str = "think") -> str:
    """The instruction for ``problem_type`` in ``style`` (think: reason then answer; direct: answer only).

    Raises ``ValueError`` for an unknown problem type or style.
    """
    if style not in STYLES:
        raise ValueError(f"Unknown instruction style {style!r}. Known styles: {', '.join(STYLES)}.")
    rtype = get_type(problem_type)
    lead = _THINK if style == "think" else _DIRECT
    return f"{lead} The answer must be {rtype.answer_format}, for example <answer>{rtype.example}</answer>."
