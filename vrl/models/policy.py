"""Response log-probs from a Hugging Face Qwen-VL model, without materialising full-vocabulary logits.

:class:`ResponseLogProbs` wraps a ``*ForConditionalGeneration`` model: it runs the backbone (vision tower +
language model) on a padded :class:`~vrl.batch.MicroBatch`, picks the hidden states that predict response
tokens and only then applies the LM head, so memory grows with the response length, not the sequence
length times the vocabulary. Engines wrap it (FSDP applies ``fully_shard`` to it as the root module).
"""

from __future__ import annotations

import torch
from torch import nn

from vrl.algorithms.entropy import entropy_from_logits
from vrl.batch import MicroBatch, response_logits_index


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """Language-model decoder layers of a Qwen-VL model."""
    return list(model.model.language_model.layers)


def vision_blocks(model: nn.Module) -> list[nn.Module]:
    return list(model.model.visual.blocks)


class ResponseLogProbs(nn.Module):
    """``forward(mb) -> (logp (B, R), entropy (B, R) or None)`` at sampling ``temperature``."""

    def __init__(self, model: nn.Module, temperature: float = 1.0, touch_vision: bool = False) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature
        self.touch_vision = touch_vision
        """Add 0 × (one element of every vision parameter) to the output, so the vision tower is in the
        autograd graph even for text-only batches: sharded data parallelism needs every rank to produce
        gradients for the same parameters."""

    def forward(self, mb: MicroBatch, with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.model.model(**mb.model_inputs(), use_cache=False)
        hidden = out.last_hidden_state  # (B, L, H)
        rows, cols = response_logits_index(mb)
        rows, cols = rows.to(hidden.device), cols.to(hidden.device)
        picked = hidden[rows, cols]  # (B, R, H)
        logits = self.model.lm_head(picked).float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        targets = mb.input_ids[rows, (cols + 1).clamp(max=mb.input_ids.shape[1] - 1)]
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = mb.token_mask.to(logp.device)
        logp = logp * mask
        entropy = entropy_from_logits(logits) * mask if with_entropy else None
        if self.touch_vision and torch.is_grad_enabled():
            logp = logp + 0.0 * sum(p.reshape(-1)[0] for p in self.model.model.visual.parameters())
        return logp, entropy
