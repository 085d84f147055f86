"""One evaluation run's pieces: where each benchmark's files are, its records, and running one shard.

``run_shard`` is what an array task does: load the records of its slice, skip those already predicted,
start the engine, push the rest through the asynchronous pipeline and append one line per sample to the
benchmark's prediction file (answer, scores, settings, or the error that stopped the sample).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eval_harness.benchmarks import get_benchmark
from eval_harness.config import Config, parse_roots, settings_of
from eval_harness.engines import build_engine, resolve_engine
from eval_harness.inference import Outcome, Pipeline, PromptMaker
from eval_harness.predictions import PredictionWriter, check_settings, finished_keys, prediction_file
from eval_harness.records import BENCH, KEY, load_benchmark
from vrl.log import get_logger
from vrl.rewards import RewardConfig, score
from vrl.rollout.base import SamplingParams

logger = get_logger(__name__)


def benchmark_paths(cfg: Config, name: str) -> tuple[Path, Path]:
    """(annotation file, folder its records' media paths are relative to) of benchmark ``name``.

    The toy benchmark's files are the toy suite's (generated on first use). Others: the annotation file
    under ``annotations_dir`` (a fallback name when absent: ``Benchmark.annotation_path``); media under
    ``video_roots[name]``, else ``<video_root>/<benchmark folder>``, else the annotation file's folder.
    """
    bench = get_benchmark(name)
    if bench.name == "toy":
        from vrl.toy.suite import ensure_toy_suite

        root = ensure_toy_suite(cfg.toy)
        return root / bench.annotation_file, root
    path = bench.annotation_path(cfg.annotations_dir)
    roots = parse_roots(cfg.video_roots)
    if bench.name in roots:
        return path, Path(roots[bench.name])
    if cfg.video_root:
        return path, Path(cfg.video_root) / bench.media_dir
    return path, path.parent


def load_all(cfg: Config, names: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Validated records per benchmark (the first ``max_samples`` of each when set)."""
    out = {}
    for name in names or cfg.benchmarks:
        path, media_root = benchmark_paths(cfg, name)
        records = load_benchmark(get_benchmark(name), path, media_root)
        out[name] = records[: cfg.max_samples] if cfg.max_samples else records
    return out


def model_settings(cfg: Config) -> tuple[Path, str, dict[str, Any]]:
    """(model directory, family, settings) of the run; a tiny model name is built on first use."""
    from vrl.models.loading import model_family
    from vrl.models.tiny import resolve_model

    model_path = Path(resolve_model(cfg.model))
    family = model_family(model_path)
    return model_path, family, settings_of(cfg, model_path, family, cfg.inference.engine)


def remaining(cfg: Config, run_dir: Path, records: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Records without a (successful, with ``retry_errors``) prediction, in benchmark and file order."""
    out = []
    for name, recs in records.items():
        done = finished_keys(run_dir, name, cfg.retry_errors)
        out.extend(r for r in recs if r[KEY] not in done)
    return out


class LineWriter:
    """The pipeline's sink: scores an answer (the writer thread overlaps this with generation) and appends
    its prediction line to the benchmark's file."""

    def __init__(
        self, run_dir: Path, settings: dict[str, Any], engine: str, shard: int, reward: RewardConfig
    ):
        self.run_dir = run_dir
        self.settings = settings
        self.engine = engine
        self.shard = shard
        self.reward = reward
        self.writers: dict[str, PredictionWriter] = {}

    def __call__(self, outcome: Outcome) -> None:
        record = outcome.record
        name = record[BENCH]
        line: dict[str, Any] = {
            "benchmark": name,
            "key": record[KEY],
            "problem_id": record.get("problem_id"),
            "response": None,
            "error": None,
            "scores": None,
        }
        if outcome.error is not None:
            line["error"] = {"reason": outcome.error.reason, "message": str(outcome.error)}
        else:
            comp = outcome.completion
            assert comp is not None
            line["response"] = comp.text
            try:
                line["scores"] = score(record, comp.text, self.reward)
            except (
                ValueError
            ) as e:  # a ground truth only the isolated scorer parses (math): aggregation reports it
                logger.warning("sample %s/%s not scored: %s", name, record[KEY], e)
            line.update(
                prompt_tokens=outcome.prompt_tokens,
                response_tokens=len(comp.token_ids),
                truncated=comp.truncated,
            )
        line.update(
            seconds=round(outcome.seconds, 3),
            shard=self.shard,
            engine=self.engine,
            settings=self.settings,
            time=round(time.time(), 3),
        )
        if name not in self.writers:
            self.writers[name] = PredictionWriter(prediction_file(self.run_dir, name))
        self.writers[name].append(line)


def run_shard(cfg: Config, task: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Run one array task's slice (resumable: samples already predicted are skipped)."""
    model_path, family, settings = model_settings(cfg)
    check_settings(run_dir, settings)
    wanted: dict[str, set[str]] = {}
    for name, key in task["samples"]:
        wanted.setdefault(name, set()).add(str(key))
    records = load_all(cfg, [n for n in cfg.benchmarks if n in wanted])
    todo = [r for r in remaining(cfg, run_dir, records) if r[KEY] in wanted.get(r[BENCH], ())]
    summary: dict[str, Any] = {
        "shard": task["shard"],
        "assigned": len(task["samples"]),
        "skipped": len(task["samples"]) - len(todo),
    }
    if not todo:
        logger.info("shard %d: all %d samples already predicted", task["shard"], len(task["samples"]))
        return {**summary, "run": 0, "errors": 0}
    engine_name = resolve_engine(cfg.inference.engine)
    inf = cfg.inference
    params = SamplingParams(n=1, temperature=inf.temperature, top_p=inf.top_p, max_tokens=inf.new_tokens())
    video_spec, image_spec = cfg.specs(family)
    mode = cfg.video_source if cfg.cache_dir else "decode"
    media = (mode, list(cfg.cache_dir), video_spec, image_spec, cfg.allow_outside_root)

    def make_prompts() -> PromptMaker:
        from vrl.models.loading import load_processor

        return PromptMaker(
            load_processor(model_path), media, inf.prompt_style, inf.max_prompt_length, render_prompt
        )

    logger.info(
        "shard %d/%d: %d samples to run (%d already done), engine %s",
        task["shard"],
        task["num_shards"],
        len(todo),
        summary["skipped"],
        engine_name,
    )
    engine = build_engine(engine_name, model_path, params, inf, run_dir)
    try:
        pipeline = Pipeline(
            make_prompts,
            engine,
            LineWriter(run_dir, settings, engine_name, task["shard"], cfg.reward),
            seed=inf.seed,
            num_loaders=inf.num_loaders,
            queue_size=inf.queue_size,
            max_in_flight=inf.max_in_flight,
            progress=cfg.progress,
            desc=f"eval shard {task['shard']}",
        )
        stats = pipeline.run(todo)
    finally:
        engine.close()
    logger.info(
        "shard %d: %d samples in %.1f s (%.2f samples/s), %d errors",
        task["shard"],
        stats.samples,
        stats.seconds,
        stats.samples_per_s,
        stats.errors,
    )
    return {
        **summary,
        "run": stats.samples,
        "errors": stats.errors,
        "seconds": round(stats.seconds, 2),
        "samples_per_s": round(stats.samples_per_s, 3),
    }


def render_prompt(record: dict[str, Any], style: str) -> str:
    """The user prompt of a record in its benchmark's wording (PromptBuilder's ``render`` hook)."""
    return get_benchmark(record[BENCH]).render(record, style)
