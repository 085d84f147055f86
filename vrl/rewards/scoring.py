"""score / score_batch: route each sample to its type's reward, per sample, and assemble the breakdown.

``overall = accuracy_weight · accuracy + format_weight · format``. ``format`` is 1.0 when an ``<answer>``
tag exists and its content parses for the type, 0.5 when it exists but does not parse, 0.0 without a tag
(and 0.0 without a ``<think>`` block before the answer when ``require_think``). Every value is a float in
[0, 1]; no response string can make a call raise; an unknown problem type or a malformed ground truth
raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vrl.rewards.config import RewardConfig
from vrl.rewards.extract import Extraction, extract
from vrl.rewards.registry import RewardType, Verdict, get_type, load_extra_modules
from vrl.rewards.workers import WorkerTimeout, get_pool


def as_verdict(value: Any) -> Verdict:
    """A reward function's return value (float, :class:`Verdict` or dict) as a Verdict."""
    if isinstance(value, Verdict):
        return value
    if isinstance(value, (int, float)):
        return Verdict(float(value))
    if isinstance(value, Mapping) and "accuracy" in value:
        extras = {
            str(k): v
            for k, v in value.items()
            if k not in ("accuracy", "parsed", "overall", "format") and isinstance(v, (int, float))
        }
        return Verdict(value["accuracy"], bool(value.get("parsed", True)), extras)
    raise TypeError(
        f"A reward function must return a float, a Verdict or a dict with 'accuracy', got {type(value).__name__}."
    )


def unit_interval(value: Any) -> float:
    """A float clipped to [0, 1]; NaN and non-numbers read as 0."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if math.isnan(x):
        return 0.0
    return min(1.0, max(0.0, x))


def _prepare(config: RewardConfig | None) -> RewardConfig:
    cfg = config if config is not None else RewardConfig()
    cfg.validate()
    load_extra_modules(cfg.extra_modules)
    return cfg


def _sample_type(sample: Any) -> RewardType:
    if not isinstance(sample, Mapping):
        raise ValueError(
            f"A sample is a dict with 'problem_type' and 'solution', got {type(sample).__name__}."
        )
    return get_type(sample.get("problem_type"))


def _judge(rtype: RewardType, answer: str, sample: Mapping, cfg: RewardConfig, in_process: bool) -> Verdict:
    if len(answer) > cfg.max_answer_chars:
        return Verdict(0.0, parsed=False)
    if in_process and not rtype.isolated:
        return as_verdict(rtype.fn(answer, dict(sample), cfg))
    request = {
        "type": rtype.name,
        "answer": answer,
        "sample": dict(sample),
        "config": cfg.__dict__,
    }
    try:
        reply = get_pool(cfg.num_workers, cfg.worker_memory_mb).call(request, cfg.timeout_s)
    except WorkerTimeout:
        return Verdict(0.0, parsed=False, extras={"timeout": 1.0})
    if "error" in reply:
        raise ValueError(reply["error"])
    if "crashed" in reply:
        return Verdict(0.0, parsed=False, extras={"crashed": 1.0})
    return Verdict(reply["accuracy"], bool(reply["parsed"]), reply.get("extras") or {})


def _assemble(extraction: Extraction, verdict: Verdict, cfg: RewardConfig) -> dict[str, float]:
    accuracy = unit_interval(verdict.accuracy)
    fmt = (1.0 if verdict.parsed else 0.5) if extraction.tagged else 0.0
    if cfg.require_think and not extraction.think:
        fmt = 0.0
    result = {
        "overall": unit_interval(cfg.accuracy_weight * accuracy + cfg.format_weight * fmt),
        "format": fmt,
        "accuracy": accuracy,
    }
    if cfg.require_think:
        result["think"] = float(extraction.think)
    for key, value in verdict.extras.items():
        result.setdefault(str(key), unit_interval(value))
    return result


def score(sample: Mapping, response: str, config: RewardConfig | None = None) -> dict[str, float]:
    """Score one response against one unified record (``problem_type``, ``solution``, ``options``...).

    Returns at least ``overall``, ``format`` and ``accuracy`` (floats in [0, 1]) plus type extras
    (``iou``, ``tiou``, ``miou``, ``timeout``, ``think``...).
    """
    cfg = _prepare(config)
    rtype = _sample_type(sample)
    extraction = extract(response)
    return _assemble(extraction, _judge(rtype, extraction.answer, sample, cfg, in_process=True), cfg)


def score_batch(
    samples: Sequence[Mapping], responses: Sequence[str], config: RewardConfig | None = None
) -> list[dict[str, float]]:
    """Score many responses, each by its own sample's type; results in input order.

    Fast types run inline; types that wait on a subprocess (code) run on ``num_workers`` threads; isolated
    (math) and CPU-heavy types (caption ROUGE) run on ``num_workers`` worker processes.
    """
    if len(samples) != len(responses):
        raise ValueError(f"score_batch got {len(samples)} samples but {len(responses)} responses.")
    cfg = _prepare(config)
    rtypes = [_sample_type(s) for s in samples]  # unknown types fail before any work
    extractions = [extract(r) for r in responses]
    verdicts: list[Verdict | None] = [None] * len(samples)

    def in_process(rtype: RewardType) -> bool:
        return rtype.concurrency != "process" or cfg.num_workers == 1

    deferred = [i for i, t in enumerate(rtypes) if t.isolated or t.concurrency != "inline"]
    with ThreadPoolExecutor(max_workers=cfg.num_workers) if deferred else _NoPool() as pool:
        futures = {
            i: pool.submit(_judge, rtypes[i], extractions[i].answer, samples[i], cfg, in_process(rtypes[i]))
            for i in deferred
        }
        for i, rtype in enumerate(rtypes):
            if i not in futures:
                verdicts[i] = _judge(rtype, extractions[i].answer, samples[i], cfg, in_process=True)
        for i, future in futures.items():
            verdicts[i] = future.result()
    return [_assemble(e, v, cfg) for e, v in zip(extractions, verdicts) if v is not None]


class _NoPool:
    def __enter__(self) -> _NoPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no deferred work without a pool")
