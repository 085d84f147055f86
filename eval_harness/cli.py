"""``python -m eval_harness score|list`` — score saved predictions without a model; list the benchmarks.

``score benchmark=<name> annotations=<file> predictions=<jsonl> out=<results.json> [allow_partial=true]``
reads prediction lines ``{"problem_id": ..., "response": "..."}``, scores them with the training reward
and writes the benchmark's results (``{"benchmark", "num_scored", "num_missing", "overall", "subsets"}``,
0–100). Exit status: 0 written; 1 a data error (records without predictions and no ``allow_partial``,
predictions for unknown ids, invalid annotation records); 2 a usage or configuration error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from eval_harness.benchmarks import benchmark_names, get_benchmark
from eval_harness.config import ScoreConfig
from eval_harness.predictions import match_predictions, read_lines
from eval_harness.records import load_benchmark
from eval_harness.scoring import summarize
from vrl.config import ConfigError, parse, to_yaml
from vrl.log import setup_logging

USAGE = """usage: python -m eval_harness score benchmark=<name> annotations=<file> predictions=<jsonl> [out=<results.json>] [allow_partial=true]
       python -m eval_harness list
  predictions: one JSON object per line, {"problem_id": ..., "response": "..."}
  exit status: 0 scored, 1 data error (missing or unknown predictions, bad records), 2 usage/config error"""


def read_verdicts(path: str) -> dict[str, float]:
    """Judge verdicts by id (``key`` or ``problem_id``) from a JSONL file."""
    out = {}
    for line in read_lines(path):
        ident = line.get("key", line.get("problem_id"))
        if ident is not None and isinstance(line.get("verdict"), (int, float)):
            out[str(ident)] = float(line["verdict"])
    return out


def score_command(cfg: ScoreConfig) -> dict:
    """The results dict of ``score`` (raises ``ValueError`` for data errors)."""
    bench = get_benchmark(cfg.benchmark)
    records = load_benchmark(bench, cfg.annotations, media_root="")
    if not Path(cfg.predictions).is_file():
        raise ValueError(f"predictions file not found: {cfg.predictions}")
    responses = match_predictions(records, read_lines(cfg.predictions), source=cfg.predictions)
    verdicts = read_verdicts(cfg.verdicts) if cfg.verdicts else None
    if verdicts:
        by_pid = {str(r["problem_id"]): r["_key"] for r in records}
        verdicts = {by_pid.get(k, k): v for k, v in verdicts.items()}
    return summarize(
        bench, records, responses, allow_partial=cfg.allow_partial, reward=cfg.reward, verdicts=verdicts
    )


def _write(path: str, result: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, target)


def _list() -> int:
    for name in benchmark_names():
        bench = get_benchmark(name)
        note = "" if bench.has_public_file else "  (no public file: see FORMAT.md)"
        print(f"{name:<18} {bench.title:<18} {bench.annotation_file:<22} {bench.metric}{note}")
    return 0


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "list":
        return _list()
    if args[0] != "score":
        print(f"error: unknown command {args[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    setup_logging("WARNING")
    try:
        cfg, print_config = parse(ScoreConfig, args[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if print_config:
        print(to_yaml(cfg, with_docs=True), end="")
        return 0
    try:
        result = score_command(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if cfg.out:
        _write(cfg.out, result)
    missing = f", {result['num_missing']} missing" if result["num_missing"] else ""
    print(
        f"{result['title']}: overall {result['overall']:.2f} over {result['num_scored']} records{missing}"
        + (f" -> {cfg.out}" if cfg.out else "")
    )
    if not cfg.out:
        print(json.dumps(result, indent=2))
    return 0
