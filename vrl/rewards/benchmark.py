"""Reward throughput and latency on a mixed corpus of every type, adversarial responses included.

``python -m vrl.rewards.benchmark [num_normal=40] [num_workers=2] [timeout_s=5]`` prints, per problem
type, the calls per second one core sustains (sequential calls, one thread) on the mixed corpus and on
the normal responses alone, p50 / p99 / max latency over all responses, the max over the adversarial ones
alone, then the throughput of ``score_batch`` over the whole corpus. Normal responses mix right and wrong answers, reasoning, missing tags and ``\\boxed{}``;
adversarial ones are 1 MB strings, deep nesting, tag floods, pathological LaTeX, fork bombs, XML bombs.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from dataclasses import dataclass

from vrl.rewards.config import RewardConfig
from vrl.rewards.scoring import score, score_batch

_MB = 1 << 20

#: problem type → (sample, a right answer, a wrong answer)
CASES: dict[str, tuple[dict, str, str]] = {
    "multiple choice": (
        {"solution": "<answer>C</answer>", "options": ["A. a cat", "B. Vitamin C", "C. a dog", "D. none"]},
        "C",
        "B",
    ),
    "numerical": ({"solution": "<answer>12.97</answer>"}, "12.97", "13"),
    "regression": ({"solution": "<answer>4.2</answer>"}, "4", "9"),
    "REC": ({"solution": "<answer>3</answer>"}, "three", "4"),
    "open-ended": ({"solution": "<answer>Dolly Zoom</answer>"}, "dolly zoom", "pan"),
    "caption": (
        {
            "solution": "A lecturer in a gray cap derives the logarithm's derivative on a whiteboard, step by step."
        },
        "A lecturer derives the derivative of a logarithm on a whiteboard step by step.",
        "Two dogs play in a park.",
    ),
    "ocr": ({"solution": "OPEN 24 HOURS EVERY DAY"}, "open 24 hours every day", "closed"),
    "boolean": ({"solution": "<answer>Yes</answer>"}, "yes", "no"),
    "SSR": ({"solution": "<answer>No</answer>"}, "No", "Yes"),
    "CRR": ({"solution": "<answer>Yes</answer>"}, "true", "0"),
    "llava": ({"solution": "Response 2"}, "Response B", "Response 1"),
    "math": ({"solution": "<answer>$\\frac{1}{2}$</answer>"}, "0.5", "\\frac{1}{3}"),
    "temporal grounding": (
        {"solution": '<think>{"time": [24.3, 30.4], "boxes": {}}</think><[PLHD]>'},
        '{"time": [24.0, 30.0]}',
        "from 2 to 5 seconds",
    ),
    "spatial grounding": (
        {"solution": '{"boxes": [10, 20, 110, 220]}'},
        '{"boxes": [12, 22, 108, 215]}',
        "[0, 0, 5, 5]",
    ),
    "spatial-temporal grounding": (
        {"solution": '{"time": [1.0, 3.5], "boxes": {"1": [1, 2, 30, 40], "2": [2, 3, 31, 41]}}'},
        '{"time": [1.0, 3.0], "boxes": {"1": [1, 2, 30, 40], "2": [2, 3, 30, 40]}}',
        '{"time": [5, 6], "boxes": {}}',
    ),
    "tracking": (
        {"solution": '{"boxes": {"0": [1, 2, 30, 40], "1": [2, 3, 31, 41]}}'},
        '{"boxes": {"0": [1, 2, 30, 40], "1": [2, 3, 31, 41]}}',
        '{"boxes": {"5": [1, 2, 3, 4]}}',
    ),
    "svg-code": (
        {"solution": '<svg xmlns="http://www.w3.org/2000/svg"><rect width="4"/><circle r="2"/></svg>'},
        '<svg xmlns="http://www.w3.org/2000/svg"><rect width="5"/><circle r="2"/></svg>',
        "<svg><rect>",
    ),
    "code": (
        {
            "solution": "",
            "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(0, 0) == 0"],
        },
        "```python\ndef add(a, b):\n    return a + b\n```",
        "```python\ndef add(a, b):\n    return a - b\n```",
    ),
}


def adversarial_responses() -> list[str]:
    rng = random.Random(0)
    noise = "".join(chr(rng.randrange(32, 127)) for _ in range(_MB))
    return [
        noise,
        "[" * _MB,
        "{" * _MB,
        '{"time": [' * (_MB // 10),
        "<answer>" * (_MB // 8),
        "</answer>" * (_MB // 9),
        "\\boxed{" * (_MB // 7),
        "7" * _MB,
        "A B C D " * (_MB // 8),
        "<answer>" + "C " * (_MB // 2) + "</answer>",
        "<answer>" + "the cat sat " * 5000 + "</answer>",
        "<answer>" + "\\frac{" * 300 + "1" + "}{2}" * 300 + "</answer>",
        "<answer>" + "\\sqrt{" * 500 + "2" + "}" * 500 + "</answer>",
        "<answer>9^{9^{9^{9^{9^{9^{9}}}}}}</answer>",
        "<answer>" + '{"a":' * 5000 + "1" + "}" * 5000 + "</answer>",
        "<answer>" + "[" * 100000 + "]" * 100000 + "</answer>",
        "<answer>" + "<a" * 30000 + "</answer>",
        "<answer>" + "".join(f"{i}, " for i in range(9000)) + "</answer>",
        "<answer>" + "-0" * 30000 + "</answer>",
        "<answer>```python\nimport os\nwhile True:\n    os.fork()\n```</answer>",
        "<answer>```python\ndef add(a, b):\n    while True:\n        pass\n```</answer>",
        '<answer><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><svg>&b;</svg></answer>',
    ]


def normal_responses(right: str, wrong: str, count: int, rng: random.Random) -> list[str]:
    forms = [
        lambda a: f"<answer>{a}</answer>",
        lambda a: f"<think>Looking at the frames, the answer follows.</think><answer>{a}</answer>",
        lambda a: f"The answer is \\boxed{{{a}}}.",
        lambda a: f"I think it is {a}.",
        lambda a: f"<think>{'Reasoning step. ' * 40}</think>\n<answer>{a}</answer>",
    ]
    return [rng.choice(forms)(right if rng.random() < 0.5 else wrong) for _ in range(count)]


@dataclass
class Row:
    problem_type: str
    normal: list[float]
    """Seconds per call, normal responses."""
    adversarial: list[float]
    """Seconds per call, adversarial responses."""

    @property
    def latencies(self) -> list[float]:
        return self.normal + self.adversarial


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(num_normal: int = 40, config: RewardConfig | None = None) -> tuple[list[Row], float, int]:
    """Per-type latencies (sequential), then one score_batch over everything: (rows, batch_s, n)."""
    cfg = config or RewardConfig()
    rng = random.Random(0)
    bad = adversarial_responses()
    rows, corpus = [], []
    for problem_type, (sample, right, wrong) in CASES.items():
        record = {"problem_type": problem_type, **sample}
        score(record, right, cfg)  # warm caches and workers outside the measurement
        latencies, adversarial = [], []
        for response in normal_responses(right, wrong, num_normal, rng):
            start = time.perf_counter()
            score(record, response, cfg)
            latencies.append(time.perf_counter() - start)
            corpus.append((record, response))
        for response in bad:
            start = time.perf_counter()
            score(record, response, cfg)
            adversarial.append(time.perf_counter() - start)
            corpus.append((record, response))
        rows.append(Row(problem_type, latencies, adversarial))
    start = time.perf_counter()
    score_batch([r for r, _ in corpus], [t for _, t in corpus], cfg)
    return rows, time.perf_counter() - start, len(corpus)


def format_table(rows: list[Row], batch_s: float, n: int, cfg: RewardConfig) -> str:
    lines = [
        "| type | calls | calls/s/core mixed | calls/s/core normal | p50 ms | p99 ms | max ms | adversarial max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        all_calls = row.latencies
        lines.append(
            f"| {row.problem_type} | {len(all_calls)} | {len(all_calls) / sum(all_calls):,.0f} | "
            f"{len(row.normal) / sum(row.normal):,.0f} | {1e3 * statistics.median(all_calls):.2f} | "
            f"{1e3 * _percentile(all_calls, 0.99):.1f} | {1e3 * max(all_calls):.1f} | "
            f"{1e3 * max(row.adversarial):.1f} |"
        )
    cores = min(cfg.num_workers, os.cpu_count() or 1)
    lines.append(
        f"\nscore_batch over the whole corpus ({n} calls, num_workers={cfg.num_workers}, {cores} cores): "
        f"{batch_s:.2f} s, {n / batch_s:,.0f} calls/s, {n / batch_s / cores:,.0f} calls/s/core"
    )
    lines.append(
        "calls/s/core: sequential calls in one thread (math and Python code run in a worker process or "
        "sandbox; the caller waits). Adversarial: 1 MB strings, deep nesting, tag floods, pathological "
        f"LaTeX, fork/XML bombs ({len(rows[0].adversarial)} per type)."
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from vrl.config import ConfigError, parse

    args = dict(a.split("=", 1) for a in argv if "=" in a)
    num_normal = int(args.pop("num_normal", 40))
    try:
        cfg, _ = parse(RewardConfig, [f"{k}={v}" for k, v in args.items()])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, batch_s, n = run(num_normal, cfg)
    print(format_table(rows, batch_s, n, cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
