"""The Qwen-VL policy as one pipeline stage of Megatron-Core: HF vision tower + Megatron ``GPTModel`` decoder.

Stage 0 holds the vision tower (the HF module, replicated over tensor-parallel ranks) and the vocab-parallel
token embedding; it scatters image/video features into the placeholder token positions, like the HF
model, and for Qwen3-VL adds the DeepStack features to the outputs of the first decoder layers. Every
stage holds its contiguous slice of decoder layers. The last stage applies the final norm and the
vocab-parallel output layer, but only at the positions that predict response tokens, so logits never
span the whole sequence.

Attention is causal over right-padded rows; padding sits after every real token of its row and so never
influences real positions, which is why no padding mask is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vrl.engines.megatron.layer_spec import decoder_block_spec
from vrl.engines.megatron.rope import QwenMRoPE
from vrl.engines.megatron.spec import DecoderSpec

RECOMPUTE = ("none", "selective", "full")


def transformer_config(
    spec: DecoderSpec,
    tp: int,
    pp: int,
    *,
    recompute: str = "none",
    sequence_parallel: bool = False,
    use_cpu_init: bool = True,
    dtype: torch.dtype = torch.float32,
):
    """The Megatron ``TransformerConfig`` of ``spec``'s decoder (``dtype`` parameters, fp32 by default; no
    fusions: CPU-safe).

    ``recompute``: ``full`` recomputes every layer in backward from its input (megatron's uniform method,
    one layer per checkpoint); ``selective`` only the core attention (megatron's default module list:
    the ``S × S`` score and probability tensors are the ones worth dropping without flash attention);
    ``none`` keeps all activations. ``sequence_parallel``: layer norms and residuals hold 1/TP of the
    tokens, gathered before and reduce-scattered after the tensor-parallel linears."""
    from megatron.core.transformer.transformer_config import TransformerConfig

    if recompute not in RECOMPUTE:
        raise ValueError(f"unknown recompute '{recompute}'. Known: {', '.join(RECOMPUTE)}")
    extra: dict = {}
    if recompute == "full":
        extra = {"recompute_granularity": "full", "recompute_method": "uniform", "recompute_num_layers": 1}
    elif recompute == "selective":
        extra = {"recompute_granularity": "selective", "recompute_modules": ["core_attn"]}
    return TransformerConfig(
        num_layers=spec.num_layers,
        hidden_size=spec.hidden_size,
        ffn_hidden_size=spec.ffn_hidden_size,
        num_attention_heads=spec.num_heads,
        num_query_groups=spec.num_kv_heads,
        kv_channels=spec.head_dim,
        normalization="RMSNorm",
        layernorm_epsilon=spec.rms_eps,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        add_qkv_bias=spec.qkv_bias,
        qk_layernorm=spec.qk_norm,
        hidden_dropout=0.0,
        attention_dropout=spec.attention_dropout,
        attention_softmax_in_fp32=True,
        tensor_model_parallel_size=tp,
        sequence_parallel=sequence_parallel,
        pipeline_model_parallel_size=pp,
        pipeline_dtype=dtype,
        params_dtype=dtype,
        bf16=dtype == torch.bfloat16,
        use_cpu_initialization=use_cpu_init,
        perform_initialization=False,
        bias_activation_fusion=False,
        bias_dropout_fusion=False,
        masked_softmax_fusion=False,
        apply_rope_fusion=False,
        gradient_accumulation_fusion=False,
        persist_layer_norm=False,
        calculate_per_token_loss=True,
        mrope_section=list(spec.mrope_section),
        **extra,
    )


def _hidden_states_gpt():
    """``GPTModel`` whose last stage returns the final-normed hidden states (S, B, H) instead of logits."""
    from megatron.core.models.gpt import GPTModel

    class HiddenStatesGPTModel(GPTModel):
        def _postprocess(self, hidden_states, **kwargs):
            return hidden_states

    return HiddenStatesGPTModel


@dataclass
class StageInputs:
    """One micro-batch as every stage of a model-parallel group sees it (identical on all of them).

    ``input_ids`` (B, S) right-padded; ``position_ids`` (3, B, S); ``rows``/``cols`` (B, R) positions whose
    logits predict the response tokens ``targets`` (B, R); ``vision`` the processor's pixel tensors and grids.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    targets: torch.Tensor
    vision: dict[str, torch.Tensor] = field(default_factory=dict)


class QwenVLStage(nn.Module):
    """One pipeline stage: ``forward(StageInputs) -> hidden (S, B, H)``, or on the last stage the response
    logits ``(B, R, V / tp)`` of this tensor-parallel rank's vocabulary slice."""

    def __init__(
        self,
        spec: DecoderSpec,
        config,
        *,
        pre_process: bool,
        post_process: bool,
        vision: nn.Module | None,
        max_positions: int = 32768,
    ) -> None:
        from megatron.core.transformer.enums import ModelType

        super().__init__()
        self.spec = spec
        self.config = config
        self.model_type = ModelType.encoder_or_decoder
        self.pre_process, self.post_process = pre_process, post_process
        self.sequence_parallel = bool(config.sequence_parallel)
        layers = spec.num_layers // config.pipeline_model_parallel_size
        self.gpt = _hidden_states_gpt()(
            config=config,
            transformer_layer_spec=decoder_block_spec(config, spec.qk_norm, layers),
            vocab_size=spec.vocab_size,
            max_sequence_length=max_positions,
            pre_process=pre_process,
            post_process=post_process,
            parallel_output=True,
            share_embeddings_and_output_weights=spec.tied_embeddings,
            position_embedding_type="mrope",
            rotary_base=int(spec.rope_theta),
            # vision features are merged into the full-length embedding first; _embed scatters it then
            scatter_embedding_sequence_parallel=False,
        )
        self.gpt.rotary_pos_emb = QwenMRoPE(
            spec.head_dim, spec.rope_theta, spec.mrope_section, spec.mrope_interleaved
        )
        assert (vision is not None) == pre_process, "the vision tower lives on the first pipeline stage"
        self.vision = vision
        self._deepstack: list[torch.Tensor] | None = None
        if spec.num_deepstack and pre_process:
            layers = self.gpt.decoder.layers
            assert len(layers) >= spec.num_deepstack, "DeepStack layers must be on stage 0"
            for i in range(spec.num_deepstack):
                layers[i].register_forward_hook(self._deepstack_hook(i))

    # ---- pipeline plumbing (megatron's schedules call these) -------------------------------------------
    def set_input_tensor(self, input_tensor) -> None:
        self.gpt.set_input_tensor(input_tensor)

    # ---- stage 0: embeddings + vision ------------------------------------------------------------------
    def _vision_features(
        self, pixels: torch.Tensor, grid: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(tokens, H) merged features and the DeepStack features (each (tokens, H)) of one modality."""
        if pixels.dtype != torch.uint8:  # uint8 video patches: the tower's hook normalises them
            pixels = pixels.to(torch.float32)
        out = self.vision(pixels, grid_thw=grid, return_dict=True)
        return out.pooler_output, list(getattr(out, "deepstack_features", None) or [])

    def _embed(self, inputs: StageInputs) -> torch.Tensor:
        """Decoder input (S, B, H): token embeddings with vision features at the placeholder tokens."""
        embeds = self.gpt.embedding(input_ids=inputs.input_ids, position_ids=None)  # (S, B, H)
        batch_major = embeds.transpose(0, 1)  # (B, S, H): HF fills placeholders in row-major order
        deepstack: list[torch.Tensor] = []  # per DeepStack layer, (B, S, H) features at vision tokens, else 0
        v = inputs.vision
        for pixels_key, grid_key, token_id in (
            ("pixel_values", "image_grid_thw", self.spec.image_token_id),
            ("pixel_values_videos", "video_grid_thw", self.spec.video_token_id),
        ):
            if pixels_key not in v:
                continue
            feats, stack = self._vision_features(v[pixels_key], v[grid_key])
            mask = (inputs.input_ids == token_id)[..., None]
            if int(mask.sum()) != feats.shape[0]:
                raise ValueError(f"{int(mask.sum())} placeholder tokens but {feats.shape[0]} vision features")
            batch_major = batch_major.masked_scatter(mask, feats.to(batch_major.dtype))
            for k, feat in enumerate(stack):
                addend = torch.zeros_like(batch_major).masked_scatter(mask, feat.to(batch_major.dtype))
                if k < len(deepstack):
                    deepstack[k] = deepstack[k] + addend
                else:
                    deepstack.append(addend)
        self._deepstack = [self._to_sequence_shard(d.transpose(0, 1)) for d in deepstack] or None
        return self._to_sequence_shard(batch_major.transpose(0, 1).contiguous())

    def _to_sequence_shard(self, x: torch.Tensor) -> torch.Tensor:
        """(S, B, H) → this rank's (S / tp, B, H) slice under sequence parallelism (backward all-gathers)."""
        if not self.sequence_parallel:
            return x
        from megatron.core import tensor_parallel

        return tensor_parallel.scatter_to_sequence_parallel_region(x)

    def _deepstack_hook(self, index: int):
        def hook(module, args, output):
            if not self._deepstack:
                return output
            hidden, context = output
            return hidden + self._deepstack[index], context

        return hook

    # ---- forward ---------------------------------------------------------------------------------------
    def forward(self, inputs: StageInputs) -> torch.Tensor:
        seq = inputs.input_ids.shape[1]
        mask = torch.triu(torch.ones(1, 1, seq, seq, dtype=torch.bool, device=inputs.input_ids.device), 1)
        decoder_input = self._embed(inputs) if self.pre_process else None
        try:
            hidden = self.gpt(
                input_ids=inputs.input_ids,
                position_ids=inputs.position_ids,
                attention_mask=mask,
                decoder_input=decoder_input,
            )
        finally:
            self._deepstack = None
        if not self.post_process:
            return hidden
        weight = self.gpt.shared_embedding_or_output_weight() if self.spec.tied_embeddings else None
        if self.sequence_parallel:
            return self._sequence_parallel_logits(hidden, inputs, weight)
        picked = hidden.transpose(0, 1)[inputs.rows, inputs.cols]  # (B, R, H)
        logits, _ = self.gpt.output_layer(picked.transpose(0, 1), weight=weight)  # (R, B, V/tp)
        return logits.transpose(0, 1).float()

    def _sequence_parallel_logits(
        self, hidden: torch.Tensor, inputs: StageInputs, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """Response logits (B, R, V / tp) from sequence-sharded hidden states (S / tp, B, H).

        The sequence is gathered first (its backward reduce-scatters the partial gradients of each rank's
        vocabulary slice) and only the response positions meet the output layer; megatron's own sequence-
        parallel output layer would gather inside and project every position."""
        from megatron.core import tensor_parallel

        full = tensor_parallel.gather_from_sequence_parallel_region(hidden, tensor_parallel_output_grad=True)
        picked = full.transpose(0, 1)[inputs.rows, inputs.cols]  # (B, R, H)
        weight = self.gpt.output_layer.weight if weight is None else weight
        return F.linear(picked, weight).float()
