"""Code: SVG/HTML markup by tag-set recall and length ratio; Python by the tests it passes, sandboxed.

Which kind a record is: ``problem_type`` ``svg-code`` / ``html-code``, or a ``tests`` list (on the record
or as ``{"tests": [...]}`` JSON in the solution) for Python, or a solution that is itself ``<svg>`` or
HTML markup. Anything else is a malformed record (``ValueError``).

Markup score = 0.7 · recall of the ground truth's tag names + 0.3 · length ratio (whitespace removed),
and only when the answer parses: SVG as well-formed XML rooted at ``<svg>`` (expat, DTDs refused, so no
entity expansion), HTML with at least one element (a linear tag scanner: ``html.parser`` is quadratic on
inputs like ``"<a" * 30000``, seconds for 64 KB). Python code never runs here: it
runs in :mod:`vrl.rewards.sandbox` and scores the fraction of tests passed.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.parsers import expat

from vrl.rewards.extract import ground_truth
from vrl.rewards.registry import Verdict, register_reward
from vrl.rewards.sandbox import SandboxLimits, run_python_tests

TAG_WEIGHT = 0.7
LENGTH_WEIGHT = 0.3
_FENCE = "```"
_HTML_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9:-]*)")


def extract_code(answer: str) -> str:
    """The last fenced block (```lang … ```) of the answer, else the whole answer."""
    end = answer.rfind(_FENCE)
    if end > 0:
        start = answer.rfind(_FENCE, 0, end)
        if start >= 0:
            block = answer[start + len(_FENCE) : end]
            first_newline = block.find("\n")
            header = block[:first_newline] if first_newline >= 0 else ""
            if first_newline >= 0 and (not header.strip() or re.fullmatch(r"[\w+#.-]+", header.strip())):
                block = block[first_newline + 1 :]
            return block.strip("\n")
    return answer


def svg_tags(markup: str) -> set[str] | None:
    """Element names of well-formed SVG (root ``svg``), or None; DOCTYPE/ENTITY refused outright."""
    if "<!DOCTYPE" in markup.upper() or "<!ENTITY" in markup.upper():
        return None
    tags: list[str] = []
    parser = expat.ParserCreate()
    parser.StartElementHandler = lambda name, attrs: tags.append(name.rsplit(":", 1)[-1].lower())
    try:
        parser.Parse(markup.strip(), True)
    except (expat.ExpatError, ValueError, RecursionError):
        return None
    if not tags or tags[0] != "svg":
        return None
    return set(tags)


def html_tags(markup: str) -> set[str] | None:
    """Lower-cased element names of start tags (comments skipped), or None when there is none. Linear."""
    tags: set[str] = set()
    i = 0
    while True:
        j = markup.find("<", i)
        if j < 0:
            break
        if markup.startswith("<!--", j):
            end = markup.find("-->", j + 4)
            if end < 0:
                break  # an unterminated comment runs to the end
            i = end + 3
            continue
        m = _HTML_TAG.match(markup, j)
        if m:
            tags.add(m.group(1).lower())
        i = j + 1
    return tags or None


def markup_score(pred_tags: set[str], pred: str, gold_tags: set[str], gold: str) -> float:
    recall = len(pred_tags & gold_tags) / len(gold_tags) if gold_tags else 1.0
    a, b = len("".join(pred.split())), len("".join(gold.split()))
    ratio = min(a, b) / max(a, b) if max(a, b) else 1.0
    return TAG_WEIGHT * recall + LENGTH_WEIGHT * ratio


def _tests_of(sample: dict, truth: str) -> list | None:
    tests = sample.get("tests")
    if tests is None and truth.lstrip().startswith("{"):
        try:
            obj = json.loads(truth)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            tests = obj.get("tests")
    if tests is None:
        return None
    if isinstance(tests, str):
        tests = [tests]
    if not isinstance(tests, list) or not tests:
        raise ValueError(f"Code 'tests' must be a non-empty list, got {tests!r}.")
    return tests


def code_kind(sample: dict, truth: str) -> str:
    """svg, html or python (see the module docstring); ValueError when the record says none of them."""
    raw = str(sample.get("problem_type", "")).strip().lower().replace("_", "-")
    if raw.startswith("svg"):
        return "svg"
    if raw.startswith("html"):
        return "html"
    if _tests_of(sample, truth) is not None:
        return "python"
    head = truth.lstrip()[:200].lower()
    if head.startswith("<svg") or (head.startswith("<?xml") and "<svg" in truth.lower()):
        return "svg"
    if head.startswith("<"):
        return "html"
    raise ValueError(
        "A code record needs problem_type svg-code/html-code, SVG/HTML markup as solution, or Python "
        "'tests' (a list of assert strings or {'input', 'output'} pairs)."
    )


@register_reward(
    "code",
    aliases=("svg-code", "html-code", "python-code", "svg", "html", "coding"),
    answer_format="the complete code in one fenced block",
    example="```python\ndef solve(x):\n    return 2 * x\n```",
    concurrency="thread",
)
def code(answer: str, sample: dict, config: Any) -> Verdict:
    truth = ground_truth(sample)
    kind = code_kind(sample, truth)
    pred = extract_code(answer)
    if kind == "python":
        tests = _tests_of(sample, truth) or []
        limits = SandboxLimits(
            wall_s=getattr(config, "timeout_s", 5.0),
            cpu_s=getattr(config, "sandbox_cpu_s", 4),
            memory_mb=getattr(config, "sandbox_memory_mb", 512),
            max_processes=getattr(config, "sandbox_max_processes", 16),
            isolation=getattr(config, "sandbox_isolation", "auto"),
        )
        result = run_python_tests(pred, tests, limits)
        extras = {"timeout": 1.0} if result.timed_out else {}
        return Verdict(result.fraction, parsed=result.compiled, extras=extras)
    parse = svg_tags if kind == "svg" else html_tags
    gold_markup = extract_code(truth)
    gold_tags = parse(gold_markup)
    if gold_tags is None:
        raise ValueError(f"{kind} solution does not parse: {truth[:200]!r}.")
    pred_tags = parse(pred)
    if pred_tags is None:
        return Verdict(0.0, parsed=False)
    return Verdict(markup_score(pred_tags, pred, gold_tags, gold_markup))
