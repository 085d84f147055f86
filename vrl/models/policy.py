"""Response log-probs from a Hugging Face Qwen-VL model, without materialising full-vocabulary logits.

:class:`ResponseLogProbs` wraps a ``*ForConditionalGeneration`` model: it runs the backbone (vision tower +
language model) on a padded or packed :class:`~vrl.batch.MicroBatch`, picks the hidden states that predict response
tokens and only then applies the LM head, so memory grows with the response length, not the sequence
length times the vocabulary. Engines wrap it (FSDP applies ``fully_shard`` to it as the root module).
"""

from __future__ import annotations

import torch
from torch import nn

from vrl.algorithms.entropy import entropy_from_logits
from vrl.batch import MicroBatch, response_logits_index
from vrl.engines import packing
from vrl.models.vision_reuse import MediaInputs, VisionReuse


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
        self.vision_reuse = VisionReuse()
        """Encodes each prompt's media once per forward (and once per no-grad pass inside
        ``vision_reuse.caching()``) when the caller plans them (:mod:`vrl.models.vision_reuse`)."""

    def uses_shared_pass(self, mb: MicroBatch) -> bool:
        """Whether ``mb`` runs the padded shared-prompt pass (its vision inputs are ``mb.shared.vision``).
        A gradient-checkpointed layer drops the key/value cache in training: no sharing then."""
        return (
            mb.packed is None
            and mb.shared is not None
            and not (self.training and self.model.is_gradient_checkpointing)
        )

    def _inputs(self, inputs: dict, media: dict[str, MediaInputs] | None) -> dict:
        """HF forward kwargs: the planned media become ``mm_encoder_outputs`` (pixels already removed)."""
        if media:
            inner = self.model.model
            encoded = {k: self.vision_reuse.features(inner, m) for k, m in media.items()}
            inputs = {**inputs, "mm_encoder_outputs": encoded}
        return inputs

    def forward(
        self, mb: MicroBatch, with_entropy: bool = False, media: dict[str, MediaInputs] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``media``: the micro-batch's media planned by ``vision_reuse.plan`` (its pixels then left
        ``mb``); None: the model encodes the pixels in ``mb`` itself."""
        if mb.packed is not None:
            picked, targets = self._packed_hidden(mb, media)
        else:
            rows, cols = response_logits_index(mb)
            targets = mb.input_ids[rows, (cols + 1).clamp(max=mb.input_ids.shape[1] - 1)]  # (B, R)
            if self.uses_shared_pass(mb):
                picked = self._shared_prompt_hidden(mb, targets, media)
            else:
                inputs = self._inputs(mb.model_inputs(), media)
                hidden = self.model.model(**inputs, use_cache=False).last_hidden_state  # (B, L, H)
                picked = hidden[rows.to(hidden.device), cols.to(hidden.device)]  # (B, R, H)
        logits = self.model.lm_head(picked).float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = mb.token_mask.to(logp.device)
        logp = logp * mask
        entropy = entropy_from_logits(logits) * mask if with_entropy else None
        if self.touch_vision and torch.is_grad_enabled():
            logp = logp + 0.0 * sum(p.reshape(-1)[0] for p in self.model.model.visual.parameters())
        return logp, entropy

    def _packed_hidden(
        self, mb: MicroBatch, media: dict[str, MediaInputs] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, R, H) hidden states predicting each response token and the (B, R) targets, from one pass
        over the packed row (1, T) (:mod:`vrl.engines.packing`).

        Sequences stay apart through the 4-row position ids with no 2-D mask and no cache (transformers'
        packed mask, or varlen attention under flash attention); with shared prompts through the explicit
        shared-prefix mask, except under the attentions that read the structure from the positions
        (``packing.POSITION_BLOCKED_ATTENTION``: per-sequence sdpa, Ulysses), which need no (T, T) mask.
        Each sequence gets the M-RoPE positions and vision features it has alone."""
        layout = mb.packed
        assert layout is not None
        inner = self.model.model
        positions = packing.position_ids(mb, inner.get_rope_index)
        extra = {}
        text_attention = self.model.config.get_text_config()._attn_implementation
        if layout.shared and text_attention not in packing.POSITION_BLOCKED_ATTENTION:
            dtype = inner.get_input_embeddings().weight.dtype
            extra["attention_mask"] = packing.shared_prefix_mask(
                layout, self.model.config._attn_implementation, dtype
            )
        inputs = self._inputs(mb.model_inputs(), media)
        hidden = inner(**inputs, position_ids=positions, use_cache=False, **extra).last_hidden_state
        index = layout.logit_index.to(hidden.device)
        return hidden[0][index], layout.targets.to(hidden.device)  # (B, R, H), (B, R)

    def _shared_prompt_hidden(
        self, mb: MicroBatch, responses: torch.Tensor, media: dict[str, MediaInputs] | None = None
    ) -> torch.Tensor:
        """(B, R, H) hidden states predicting each response token, running every distinct prompt once.

        The U prompts (vision tower included) run as one batch that returns their key/value cache; each
        row's response then runs on its prompt's cache (rows gather it by ``shared.index``, so gradients
        of all rows of a group flow back into one prompt pass). Same values as the full-sequence pass up
        to float rounding; a group of n samples pays for its prompt once instead of n times.
        """
        shared = mb.shared
        assert shared is not None
        inner = self.model.model
        out = inner(**self._inputs(shared.model_inputs(), media), use_cache=True)
        cache, prompt_hidden = out.past_key_values, out.last_hidden_state  # cache: U rows of W positions
        index = shared.index.to(prompt_hidden.device)
        lens = shared.lens.to(prompt_hidden.device)[index]  # (B,)
        # text positions after a multimodal prompt are offset by the rope delta of get_rope_index
        has_vision = any(k.endswith("grid_thw") for k in shared.vision)
        if has_vision and out.rope_deltas is not None:
            delta = out.rope_deltas.to(lens.device).reshape(-1)[index]
        else:
            delta = torch.zeros_like(lens)
        cache.batch_select_indices(index)
        b, r = responses.shape
        positions = lens[:, None] + torch.arange(r, device=lens.device)[None, :] + delta[:, None]
        mask = torch.cat(
            [shared.attention_mask.to(lens.device)[index], mb.token_mask.to(lens.device).long()], 1
        )
        embeds = inner.get_input_embeddings()(responses.to(lens.device))
        resp = inner.language_model(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=positions[None].expand(3, b, r),
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state  # (B, R, H): position j predicts response token j + 1
        first = prompt_hidden[index, lens - 1]  # the prompt's last position predicts response token 0
        return torch.cat([first[:, None], resp[:, : r - 1]], dim=1)
