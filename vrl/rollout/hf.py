"""The ``hf`` rollout engine: transformers ``generate`` on an unsharded copy of the policy.

Simple and dependency-free; the training engine pushes its weights here after each update exactly as it
does into vLLM, so both rollout engines share one code path in the trainer.

Sampling is set up here, not from the checkpoint's ``generation_config.json`` (a released Qwen-VL ships
``repetition_penalty``, ``top_k=1`` ...): the processors are exactly the ban of vision placeholders and the
``rollout.*`` warpers, as in the vLLM engine. A recorder in that list keeps the log-prob of every sampled
token (:func:`vrl.rollout.base.logprob_mode` says where it sits), holding one (B, vocab) step at a time
instead of generate's ``output_scores`` (steps x B x vocab).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import GenerationConfig
from transformers.generation import (
    LogitsProcessor,
    LogitsProcessorList,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from vrl.batch import Prompt, cat_vision
from vrl.log import get_logger
from vrl.models.loading import load_hf_model, load_processor
from vrl.rollout.base import Completion, RolloutEngine, SamplingParams, logprob_mode, vision_token_ids

logger = get_logger(__name__)


def _left_pad(seqs: list[torch.Tensor], value: int) -> torch.Tensor:
    width = max(s.numel() for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, width - s.numel() :] = s
    return out


class LogprobRecorder(LogitsProcessor):
    """Keeps the log-prob of each sampled token under the scores this processor sees.

    Called once per generation step with the tokens so far (B, L) and the step's scores (B, vocab): the
    last column of ``input_ids`` is the token sampled from the previous step's scores, so only the previous
    step's log-softmax is held. :meth:`finish` adds the last step's token."""

    def __init__(self) -> None:
        self.prev: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def _take(self, tokens: torch.Tensor) -> None:
        assert self.prev is not None
        self.steps.append(self.prev.gather(1, tokens[:, None].to(self.prev.device)).squeeze(1))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prev is not None:
            self._take(input_ids[:, -1])
        self.prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, generated: torch.Tensor) -> torch.Tensor:
        """(B, T) log-probs of ``generated`` (B, T), the new tokens generate returned."""
        if self.prev is not None and len(self.steps) < generated.shape[1]:
            self._take(generated[:, len(self.steps)])
        if not self.steps:
            return torch.zeros(generated.shape[0], 0)
        return torch.stack(self.steps, dim=1).cpu()


class HFRollout(RolloutEngine):
    name = "hf"

    def __init__(self, model_path: Path, device: torch.device, batch_size: int = 32) -> None:
        self.model = load_hf_model(model_path, dtype=torch.float32, device=device).eval()
        self.model.requires_grad_(False)
        self.tokenizer = load_processor(model_path).tokenizer
        self.device = device
        self.batch_size = batch_size
        gen = self.model.generation_config
        eos = gen.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = int(gen.pad_token_id if gen.pad_token_id is not None else next(iter(self.eos_ids)))
        self.banned = vision_token_ids(self.model.config)

    def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        params = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        with torch.no_grad():
            for name, tensor in weights:
                target = params.get(name, buffers.get(name))
                if target is None:
                    if name == "lm_head.weight" and self.model.config.get_text_config().tie_word_embeddings:
                        continue
                    raise KeyError(f"rollout model has no parameter '{name}'")
                target.copy_(tensor.to(target.device, target.dtype))

    def _batch_inputs(self, prompts: list[Prompt]) -> dict[str, torch.Tensor]:
        ids = _left_pad([p.input_ids for p in prompts], self.pad_id)
        mask = _left_pad([torch.ones_like(p.input_ids) for p in prompts], 0)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if any(p.mm_token_type_ids is not None for p in prompts):
            types = [
                p.mm_token_type_ids if p.mm_token_type_ids is not None else torch.zeros_like(p.input_ids)
                for p in prompts
            ]
            inputs["mm_token_type_ids"] = _left_pad([t.long() for t in types], 0)
        inputs.update(cat_vision(prompts))
        return {k: v.to(self.device) for k, v in inputs.items()}

    def _completion(self, tokens: torch.Tensor, logprobs: torch.Tensor) -> Completion:
        out: list[int] = []
        stopped = False
        for t in tokens.tolist():
            out.append(t)
            if t in self.eos_ids:
                stopped = True
                break
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        return Completion(
            token_ids=out, text=text, truncated=not stopped, logprobs=logprobs[: len(out)].tolist()
        )

    def _processors(self, params: SamplingParams) -> tuple[LogitsProcessorList, LogprobRecorder]:
        recorder = LogprobRecorder()
        ban = [SuppressTokensLogitsProcessor(self.banned, device=self.device)] if self.banned else []
        if logprob_mode(params.temperature, params.top_p, params.top_k) == "raw":
            return LogitsProcessorList([recorder, *ban]), recorder
        warpers: list[LogitsProcessor] = []
        if not params.greedy:
            if params.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k > 0:
                warpers.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                warpers.append(TopPLogitsWarper(params.top_p))
        return LogitsProcessorList([*ban, *warpers, recorder]), recorder

    @torch.no_grad()
    def generate(self, prompts: list[Prompt], params: SamplingParams, seed: int) -> list[list[Completion]]:
        expanded = [p for p in prompts for _ in range(params.n)]
        torch.manual_seed(seed)
        # built-in warpers off (temperature 1, no top-k/top-p): ours are in the processor list
        sampling = {} if params.greedy else {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
        gen = GenerationConfig(
            do_sample=not params.greedy,
            max_new_tokens=params.max_tokens,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
            repetition_penalty=1.0,  # a checkpoint's own value would fill an unset field (vLLM ignores it too)
            **sampling,
        )
        completions: list[Completion] = []
        for start in range(0, len(expanded), self.batch_size):
            chunk = expanded[start : start + self.batch_size]
            inputs = self._batch_inputs(chunk)
            processors, recorder = self._processors(params)
            out = self.model.generate(**inputs, generation_config=gen, logits_processor=processors)
            width = inputs["input_ids"].shape[1]
            new = out[:, width:].cpu()
            logprobs = recorder.finish(new)
            completions.extend(self._completion(row, lp) for row, lp in zip(new, logprobs))
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]
