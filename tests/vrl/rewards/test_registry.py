"""One registry: aliases, unknown types listing the known ones, duplicates, user extension modules."""

import subprocess
import sys
import textwrap

import pytest

from vrl.rewards import (
    RewardConfig,
    Verdict,
    canonical_type,
    get_type,
    known_types,
    register_reward,
    score,
    score_batch,
    unregister_reward,
)
from vrl.rewards.registry import load_extra_modules

ALIASES = {
    "multiple choice": ["multiple choice", "multiple_choice", "Multiple Choice"],
    "numerical": ["numerical", "number"],
    "regression": ["regression"],
    "open-ended": ["open-ended", "open_ended", "free-form", "video qa"],
    "ocr": ["ocr", "OCR"],
    "boolean": ["boolean"],
    "math": ["math"],
    "code": ["code", "svg-code", "html-code"],
    "llava": ["llava", "critic"],
    "temporal grounding": ["temporal grounding"],
    "spatial grounding": ["spatial grounding"],
    "spatial-temporal grounding": ["spatial-temporal grounding"],
    "tracking": ["tracking"],
    "REC": ["REC"],
    "SSR": ["SSR"],
    "CRR": ["CRR"],
    "caption": ["caption"],
}


@pytest.mark.parametrize(("canonical", "names"), ALIASES.items())
def test_aliases_resolve(canonical, names):
    for name in names:
        assert canonical_type(name) == canonical
    assert canonical in known_types()


def test_every_type_declares_its_answer_format():
    for name in known_types():
        rtype = get_type(name)
        assert rtype.answer_format and rtype.example


def test_unknown_type_raises_listing_known_types():
    with pytest.raises(ValueError) as err:
        score({"problem_type": "interpretive dance", "solution": "x"}, "x")
    assert "interpretive dance" in str(err.value)
    for name in ("multiple choice", "numerical", "tracking"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="Known types"):
        canonical_type(None)


def test_duplicate_names_raise():
    with pytest.raises(ValueError, match="already taken"):
        register_reward("numerical", answer_format="x", example="1")(lambda a, s, c: 1.0)
    with pytest.raises(ValueError, match="already taken"):
        register_reward("brand new", aliases=("Multiple_Choice",), answer_format="x", example="1")(
            lambda a, s, c: 1.0
        )
    assert "brand new" not in known_types()


def test_register_in_code_and_unregister():
    @register_reward("shout", answer_format="a loud word", example="HEY")
    def shout(answer, sample, config):
        return Verdict(float(answer == sample["solution"].upper()), parsed=answer.isupper())

    try:
        assert score({"problem_type": "shout", "solution": "hey"}, "<answer>HEY</answer>")["overall"] == 1.0
        assert score({"problem_type": "shout", "solution": "hey"}, "<answer>hey</answer>")["format"] == 0.5
    finally:
        unregister_reward("shout")
    assert "shout" not in known_types()


def test_extension_module_by_name(tmp_path, monkeypatch):
    package = tmp_path / "vrl_test_ext_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "rewards.py").write_text(
        textwrap.dedent(
            """
            from vrl.rewards import register_reward

            @register_reward("word count", aliases=("wc",), answer_format="a number", example="3")
            def word_count(answer, sample, config):
                return float(answer.strip() == str(len(sample["solution"].split())))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = RewardConfig(extra_modules=["vrl_test_ext_pkg.rewards"])
    try:
        sample = {"problem_type": "wc", "solution": "one two three"}
        assert score(sample, "<answer>3</answer>", cfg)["accuracy"] == 1.0
        assert [r["accuracy"] for r in score_batch([sample, sample], ["3", "4"], cfg)] == [1.0, 0.0]
        load_extra_modules(["vrl_test_ext_pkg.rewards"])  # importing again is a no-op, not a duplicate
    finally:
        unregister_reward("word count")
        sys.modules.pop("vrl_test_ext_pkg.rewards", None)
        sys.modules.pop("vrl_test_ext_pkg", None)


@pytest.mark.parametrize("name", ["mypkg/rewards.py", "rewards.py", "../x", "/abs/path"])
def test_extension_modules_are_names_not_paths(name):
    with pytest.raises(ValueError, match="module names"):
        RewardConfig(extra_modules=[name]).validate()
    with pytest.raises(ValueError, match=r"not paths|module names"):
        load_extra_modules([name])


def test_missing_extension_module_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot be imported"):
        score(
            {"problem_type": "numerical", "solution": "1"},
            "1",
            RewardConfig(extra_modules=["no_such_mod_xyz"]),
        )


def test_short_signatures_and_dict_returns():
    @register_reward("echo two")
    def two(answer, sample):
        return {"accuracy": float(answer == sample["solution"]), "parsed": answer != "", "len": 0.5}

    @register_reward("echo one")
    def one(answer):
        return answer == "ok"

    try:
        result = score({"problem_type": "echo two", "solution": "x"}, "<answer>x</answer>")
        assert result == {"overall": 1.0, "format": 1.0, "accuracy": 1.0, "len": 0.5}
        assert score({"problem_type": "echo one", "solution": "x"}, "<answer>ok</answer>")["accuracy"] == 1.0
    finally:
        unregister_reward("echo two")
        unregister_reward("echo one")


def test_a_user_type_cannot_take_a_builtin_name_first():
    # in a fresh interpreter, registering before any lookup still sees the built-ins
    code = (
        "from vrl.rewards import register_reward\n"
        "try:\n"
        "    register_reward('numerical')(lambda a, s, c: 1.0)\n"
        "except ValueError as e:\n"
        "    print('raised', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.startswith("raised") and "already taken" in out.stdout


#: every problem_type key of EasyVideoR1's routing table (examples/unified_rl/reward_function/unified.py,
#: REWARD_MAPPING) and the type that scores it here. EasyVideoR1 scores "regression" with its numerical
#: reward; here it is VSI-Bench's mean relative accuracy. "video description" is scored like open-ended
#: answers in both (our caption type is the same ROUGE judge with a caption prompt).
EASYVIDEOR1_TYPES = {
    "math": "math",
    "mathematics": "math",
    "multiple choice": "multiple choice",
    "multiple_choice": "multiple choice",
    "numerical": "numerical",
    "number": "numerical",
    "regression": "regression",
    "open-ended": "open-ended",
    "open_ended": "open-ended",
    "video qa": "open-ended",
    "video description": "caption",
    "free-form": "open-ended",
    "ocr": "ocr",
    "boolean": "boolean",
    "binary classification": "boolean",
    "llava": "llava",
    "critic": "llava",
    "code": "code",
    "coding": "code",
    "svg-code": "code",
    "html-code": "code",
    "spatial grounding": "spatial grounding",
    "temporal grounding": "temporal grounding",
    "spatial-temporal grounding": "spatial-temporal grounding",
    "tracking": "tracking",
}


@pytest.mark.parametrize(("name", "canonical"), EASYVIDEOR1_TYPES.items())
def test_every_easyvideor1_problem_type_routes(name, canonical):
    assert canonical_type(name) == canonical
    assert canonical_type(name.upper()) == canonical  # EasyVideoR1 lower-cases before routing


def test_new_easyvideor1_types_score():
    binary = {"problem_type": "binary classification", "solution": "<answer>Yes</answer>"}
    assert score(binary, "<answer>Yes, the man is running.</answer>")["accuracy"] == 1.0
    assert score(binary, "<answer>no</answer>")["accuracy"] == 0.0
    truth = "A man in a gray cap explains a derivative on a whiteboard."
    description = {"problem_type": "video description", "solution": truth}
    open_ended = {"problem_type": "open-ended", "solution": truth}
    answer = "<answer>A man explains a derivative on a board.</answer>"
    assert 0.0 < score(description, answer)["accuracy"] < 1.0
    assert score(description, answer) == score(open_ended, answer)
    assert get_type("video description").answer_format == get_type("caption").answer_format


def test_a_type_nobody_knows_still_raises_with_the_list():
    with pytest.raises(ValueError, match="Known types") as err:
        canonical_type("video summarization")
    assert "binary classification" not in str(err.value)  # canonical names are listed, not aliases
    assert "boolean" in str(err.value) and "caption" in str(err.value)
