"""``python -m vrl.rewards score INPUT.jsonl [OUTPUT.jsonl] [key=value ...]``.

Each input line is a JSON object with ``problem_type``, ``response``, ``solution`` and optional
``options`` (any other keys are kept). Each output line is the input plus ``overall``, ``format`` and
``accuracy`` (the Python API also returns the types' extra metrics). A line that cannot be scored (invalid JSON, missing
``response``, unknown problem type, malformed solution) is written with an ``error`` message instead;
unknown types list the known ones. Every other line is still scored. Exit status: 0 when every line was
scored, 1 when at least one line carries an ``error``, 2 for a usage or configuration error. Output goes to
stdout without OUTPUT (``-`` reads stdin); a summary per problem type goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from vrl.config import ConfigError, parse, to_yaml
from vrl.log import setup_logging
from vrl.rewards.config import RewardConfig
from vrl.rewards.registry import canonical_type
from vrl.rewards.scoring import score, score_batch

USAGE = (
    "usage: python -m vrl.rewards score INPUT.jsonl [OUTPUT.jsonl] [key=value ...]\n"
    "  INPUT lines: {problem_type, response, solution, options?}; '-' reads stdin; no OUTPUT: stdout.\n"
    "  options: accuracy_weight=0.9 format_weight=0.1 (one given: the other is 1 minus it)\n"
    "           require_think=false timeout_s=5 num_workers=2\n"
    "           extra_modules=[mypkg.rewards] config=reward.yaml print_config=true\n"
    "  exit status: 0 all lines scored, 1 some lines carry an 'error', 2 usage/config error"
)
CHUNK = 256


def _records(lines: Iterable[str]) -> Iterator[tuple[dict, str | None]]:
    """(record, error) per non-blank line; the record of an unreadable line is just its line number."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            yield {"line": number}, f"line {number} is not valid JSON: {e}"
            continue
        if not isinstance(record, dict):
            yield {"line": number}, f"line {number} is not a JSON object"
        elif "response" not in record:
            yield record, "record has no 'response'"
        else:
            try:
                canonical_type(record.get("problem_type"))
            except ValueError as e:
                yield record, str(e)
                continue
            yield record, None


def _score_chunk(records: list[dict], cfg: RewardConfig) -> list[dict | str]:
    """Scores (or error messages) for records of known types; a bad solution only fails its own line."""
    responses = [r["response"] if isinstance(r["response"], str) else "" for r in records]
    try:
        return list(score_batch(records, responses, cfg))
    except ValueError:
        out: list[dict | str] = []
        for record, response in zip(records, responses):
            try:
                out.append(score(record, response, cfg))
            except ValueError as e:
                out.append(str(e))
        return out


def run(lines: Iterable[str], out: TextIO, cfg: RewardConfig) -> tuple[int, int, dict[str, list[float]]]:
    """Score every line to ``out``; returns (scored, errors, overall scores per problem type)."""
    scored = errors = 0
    per_type: dict[str, list[float]] = defaultdict(list)
    pending: list[tuple[dict, str | None]] = []

    def flush() -> None:
        nonlocal scored, errors
        good = [r for r, err in pending if err is None]
        results = iter(_score_chunk(good, cfg)) if good else iter(())
        for record, err in pending:
            result = err if err is not None else next(results)
            if isinstance(result, str):
                errors += 1
                out.write(json.dumps({**record, "error": result}) + "\n")
            else:
                scored += 1
                per_type[canonical_type(record["problem_type"])].append(result["overall"])
                main_keys = {k: result[k] for k in ("overall", "format", "accuracy")}
                out.write(json.dumps({**record, **main_keys}) + "\n")
        pending.clear()

    for item in _records(lines):
        pending.append(item)
        if len(pending) >= CHUNK:
            flush()
    flush()
    return scored, errors, per_type


def _complete_weights(overrides: list[str]) -> list[str]:
    """Setting only one of the two weights on the command line sets the other to 1 minus it."""
    given = {a.split("=", 1)[0].strip(): a.split("=", 1)[1] for a in overrides}
    pairs = (("accuracy_weight", "format_weight"), ("format_weight", "accuracy_weight"))
    for key, other in pairs:
        if key in given and other not in given:
            try:
                value = float(given[key])
            except ValueError:
                return overrides  # let the config parser report the bad value
            return [*overrides, f"{other}={1.0 - value!r}"]
    return overrides


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] != "score":
        print(f"unknown command {argv[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    paths = [a for a in argv[1:] if "=" not in a]
    overrides = [a for a in argv[1:] if "=" in a]
    if not 1 <= len(paths) <= 2:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        cfg, print_config = parse(RewardConfig, _complete_weights(overrides))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    setup_logging("WARNING")
    if print_config:
        print(to_yaml(cfg, with_docs=True), file=sys.stderr)
    source = paths[0]
    if source != "-" and not Path(source).is_file():
        print(f"error: input file not found: {source}", file=sys.stderr)
        return 2
    with open(source) if source != "-" else _stdin() as lines:
        if len(paths) == 2:
            target = Path(paths[1])
            tmp = target.with_name(target.name + ".tmp")
            with tmp.open("w") as out:
                scored, errors, per_type = run(lines, out, cfg)
            os.replace(tmp, target)
        else:
            scored, errors, per_type = run(lines, sys.stdout, cfg)
    for name, values in sorted(per_type.items()):
        print(f"{name}: n={len(values)} mean_overall={sum(values) / len(values):.4f}", file=sys.stderr)
    print(f"scored {scored} lines, {errors} errors", file=sys.stderr)
    return 1 if errors else 0


class _stdin:
    def __enter__(self) -> TextIO:
        return sys.stdin

    def __exit__(self, *exc: object) -> None:
        return None
