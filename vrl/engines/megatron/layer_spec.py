"""The decoder's layer spec: megatron-core's local (non-Transformer-Engine) spec with an RMSNorm that also
runs under sequence parallelism.

Why: the local spec builds its norms through ``WrappedTorchNorm``, which refuses sequence parallelism
("sequence parallel not supported by torch LayerNorm"); Transformer Engine and Apex, whose norms accept
it, are not installed on CPU machines. :class:`RMSNorm` computes exactly what ``torch.nn.RMSNorm`` does
(the same ``rms_norm`` kernel, the same ``weight`` name, so checkpoints and the HF mapping are unchanged)
and, like megatron's own norms, tags its weight ``sequence_parallel`` when the layer norms see only this
rank's slice of the tokens: their gradients are then partial sums over tensor-parallel ranks, which
:func:`parallel.reduce_model_parallel_grads` adds up. The q/k norms (Qwen3) act on head-sharded, full
sequences and are never tagged.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """``torch.nn.RMSNorm`` over the last dimension, buildable by megatron's ``build_module``."""

    def __init__(self, config, hidden_size: int, eps: float = 1e-5, sequence_sharded: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size, dtype=config.params_dtype))
        self.weight.sequence_parallel = bool(config.sequence_parallel and sequence_sharded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def decoder_block_spec(config, qk_norm: bool, num_layers: int):
    """``TransformerBlockSubmodules`` of one pipeline stage's ``num_layers`` layers and its final norm: the
    local spec (SwiGLU MLP, causal self-attention) with :class:`RMSNorm` everywhere."""
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.transformer.spec_utils import ModuleSpec
    from megatron.core.transformer.transformer_block import TransformerBlockSubmodules

    layer = get_gpt_layer_local_spec(qk_layernorm=qk_norm, normalization="RMSNorm")
    attention = layer.submodules.self_attention
    head_norm = ModuleSpec(module=RMSNorm, params={"sequence_sharded": False})
    if qk_norm:
        attention = dataclasses.replace(
            attention,
            submodules=dataclasses.replace(
                attention.submodules, q_layernorm=head_norm, k_layernorm=head_norm
            ),
        )
    submodules = dataclasses.replace(
        layer.submodules, input_layernorm=RMSNorm, pre_mlp_layernorm=RMSNorm, self_attention=attention
    )
    layer = dataclasses.replace(layer, submodules=submodules)
    return TransformerBlockSubmodules(layer_specs=[layer] * num_layers, layer_norm=RMSNorm)
