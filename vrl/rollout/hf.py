"""The ``hf`` rollout engine: transformers ``generate`` on an unsharded copy of the policy.

Simple and dependency-free; the training engine pushes its weights here after each update exactly as it
does into vLLM, so both rollout engines share one code path in the trainer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from vrl.batch import Prompt, cat_vision
from vrl.log import get_logger
from vrl.models.loading import load_hf_model, load_processor
from vrl.rollout.base import Completion, RolloutEngine, SamplingParams, vision_token_ids

logger = get_logger(__name__)


def _left_pad(seqs: list[torch.Tensor], value: int) -> torch.Tensor:
    width = max(s.numel() for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, width - s.numel() :] = s
    return out


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

    def _completion(self, tokens: torch.Tensor) -> Completion:
        out: list[int] = []
        stopped = False
        for t in tokens.tolist():
            out.append(t)
            if t in self.eos_ids:
                stopped = True
                break
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        return Completion(token_ids=out, text=text, truncated=not stopped)

    @torch.no_grad()
    def generate(self, prompts: list[Prompt], params: SamplingParams, seed: int) -> list[list[Completion]]:
        expanded = [p for p in prompts for _ in range(params.n)]
        torch.manual_seed(seed)
        completions: list[Completion] = []
        for start in range(0, len(expanded), self.batch_size):
            chunk = expanded[start : start + self.batch_size]
            inputs = self._batch_inputs(chunk)
            kwargs = (
                {"do_sample": False}
                if params.greedy
                else {
                    "do_sample": True,
                    "temperature": params.temperature,
                    "top_p": params.top_p,
                    "top_k": params.top_k,
                }
            )
            out = self.model.generate(
                **inputs,
                max_new_tokens=params.max_tokens,
                pad_token_id=self.pad_id,
                suppress_tokens=self.banned or None,
                **kwargs,
            )
            width = inputs["input_ids"].shape[1]
            completions.extend(self._completion(row[width:]) for row in out.cpu())
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]
