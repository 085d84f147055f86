"""Ulysses sequence parallelism for the Hugging Face Qwen-VL language model, applied from the engine side.

S ranks (one sequence-parallel group, ``DistContext.sp_group``) hold the same micro-batch. The VL model
runs as usual up to the text model's input: every rank embeds the full sequence and merges the vision
features into it (the vision tower's work is split separately, :mod:`vrl.engines.vision_sharding`). A
pre-hook on the text model then pads the sequence to a multiple of S and keeps this rank's 1/S slice of
the embeddings and of the (3- or 4-row) M-RoPE positions (Qwen3-VL: also of the DeepStack features). In
every attention layer q, k, v go from sequence sharding ``(B, H, T/S, D)`` to head sharding
``(B, H/S, T, D)`` by an all-to-all, attention runs over the full sequence, and a second all-to-all brings
the output back. A post-hook all-gathers the last hidden states, so the log-prob head sees ``(B, T, H)``
exactly as without sequence parallelism.

Rules:
- S divides the attention heads. KV heads: if S divides them each rank takes n_kv/S; if there are fewer
  than S (S a multiple of n_kv) each KV head is repeated S/n_kv times before the all-to-all, so every
  rank receives the one KV head its H/S query heads use (costs (S/n_kv − 1)× more KV traffic).
- Attention on the head-sharded full sequence is torch sdpa: causal (padded micro-batches are right
  padded, so real tokens never see padding), or, for a packed row, block by block
  (:func:`vrl.engines.packing.attention_blocks` from the full text-position row, computed once per
  forward): each packed sequence causal on its own, each response of a shared prompt on its prompt and
  itself. No (T, T) mask exists (the only masks are response tokens × sequence length, for shared
  prompts); an explicit 4-D mask from a caller is still honoured (then O(T²)). Varlen kernels on the
  gathered sequence are not wired (on GPU the blocks run as separate sdpa calls).
- Gradient scale: every SP rank computes the same loss from the gathered hidden states, but each rank's
  backward through the layers covers only its token slice, and FSDP averages gradients over all
  DP × S ranks. The gather's backward therefore keeps the local slice of the gradient and multiplies it by
  S: parameters before the gather (layers, embeddings, vision tower) get S × their partial gradient, whose
  mean over the S ranks is the full gradient; the LM head after the gather gets its full gradient on
  every rank, whose mean is itself.
- The model code is untouched: the attention function is registered under :data:`ATTENTION_NAME` in
  transformers' attention registry and selected on the text config only; the group is an attribute the
  engine sets on each attention module.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vrl.distributed import DistContext
from vrl.engines.config import EngineConfig, check_sequence_parallel
from vrl.engines.packing import POSITION_BLOCKED_ATTENTION, Block, attention_blocks, blocked_attention
from vrl.engines.vision_sharding import shard_vision
from vrl.log import get_logger

logger = get_logger(__name__)

ATTENTION_NAME = "vrl_ulysses"
#: attribute set on each text attention module: the sequence-parallel process group
GROUP_ATTR = "sequence_parallel_group"
#: attribute set on each text attention module: the :class:`_SequenceShard` (the running forward's blocks)
SHARD_ATTR = "sequence_parallel_shard"
POSITION_BLOCKED_ATTENTION.add(ATTENTION_NAME)


# ---- collectives with autograd ---------------------------------------------------------------------
def _all_to_all(x: torch.Tensor, group: dist.ProcessGroup, scatter_dim: int, gather_dim: int) -> torch.Tensor:
    """Split ``x`` in S chunks along ``scatter_dim``, send chunk j to rank j, concatenate the chunks
    received from ranks 0..S−1 along ``gather_dim``."""
    s = dist.get_world_size(group)
    send = torch.stack(x.chunk(s, dim=scatter_dim), 0).contiguous()  # (S, ...)
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)
    return torch.cat(recv.unbind(0), dim=gather_dim)


class _AllToAll(torch.autograd.Function):
    """All-to-all whose backward is the inverse all-to-all (scatter and gather dimensions swapped)."""

    @staticmethod
    def forward(ctx, x, group, scatter_dim, gather_dim):
        ctx.group, ctx.dims = group, (scatter_dim, gather_dim)
        return _all_to_all(x, group, scatter_dim, gather_dim)

    @staticmethod
    def backward(ctx, grad):
        scatter_dim, gather_dim = ctx.dims
        return _all_to_all(grad, ctx.group, gather_dim, scatter_dim), None, None, None


class _GatherSequence(torch.autograd.Function):
    """All-gather along ``dim``; backward keeps this rank's slice × ``grad_scale`` (see module doc)."""

    @staticmethod
    def forward(ctx, x, group, dim, grad_scale):
        ctx.group, ctx.dim, ctx.scale = group, dim, grad_scale
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts, dim=dim)

    @staticmethod
    def backward(ctx, grad):
        s, r = dist.get_world_size(ctx.group), dist.get_rank(ctx.group)
        return grad.chunk(s, dim=ctx.dim)[r].contiguous() * ctx.scale, None, None, None


def seq_to_heads(x: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
    """``(B, H, T/S, D)`` sequence-sharded → ``(B, H/S, T, D)`` head-sharded (autograd-aware)."""
    return _AllToAll.apply(x, group, 1, 2)


def heads_to_seq(x: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
    """``(B, H/S, T, D)`` head-sharded → ``(B, H, T/S, D)`` sequence-sharded (autograd-aware)."""
    return _AllToAll.apply(x, group, 2, 1)


def gather_sequence(
    x: torch.Tensor, group: dist.ProcessGroup, dim: int = 1, grad_scale: float = 1.0
) -> torch.Tensor:
    return _GatherSequence.apply(x, group, dim, grad_scale)


# ---- attention -------------------------------------------------------------------------------------
def ulysses_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: q ``(B, H, T/S, D)``, k/v ``(B, n_kv, T/S, D)`` (after RoPE) →
    output ``(B, T/S, H, D)``. ``attention_mask``: None (causal, or the packed row's blocks the text
    model's pre-hook found) or a full-sequence ``(B, 1, T, T)`` mask."""
    group = getattr(module, GROUP_ATTR, None)
    if group is None:
        raise RuntimeError(f"{ATTENTION_NAME} attention on a module without a sequence-parallel group")
    if sliding_window is not None:
        raise ValueError("sequence parallelism does not support sliding-window attention layers")
    s = dist.get_world_size(group)
    n_kv = key.shape[1]
    if n_kv < s:  # fewer KV heads than ranks: repeat each so rank r receives the KV head of its queries
        key = key.repeat_interleave(s // n_kv, dim=1)
        value = value.repeat_interleave(s // n_kv, dim=1)
    q, k, v = (seq_to_heads(t, group) for t in (query, key, value))  # (B, H/S | n_kv/S, T, D)
    gqa = q.shape[1] != k.shape[1]  # grouped queries: sdpa shares each KV head without copying it

    def attend(q, k, v, mask):
        if mask is None:
            return F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=dropout, scale=scaling, enable_gqa=gqa
            )
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, scale=scaling, enable_gqa=gqa
        )

    shard = getattr(module, SHARD_ATTR, None)
    blocks = None if shard is None else shard.blocks
    if attention_mask is None and blocks is not None:
        out = blocked_attention(q, k, v, blocks, attend)
    elif attention_mask is None:
        out = attend(q, k, v, None)
    else:
        mask = attention_mask.to(q.device)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, scale=scaling, enable_gqa=gqa
        )
    return heads_to_seq(out, group).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, ulysses_attention)


# ---- input slicing and output gathering ------------------------------------------------------------
def _full_positions(positions: torch.Tensor | None, b: int, t: int, device: torch.device) -> torch.Tensor:
    """Position ids as ``(R, B, T)`` with R = 3 or 4 (what the text model would derive itself)."""
    if positions is None:
        return torch.arange(t, device=device).view(1, 1, -1).expand(3, b, -1)
    if positions.ndim == 2:
        return positions[None].expand(3, -1, -1)
    return positions


def _pad_mask(mask: torch.Tensor, pad: int) -> torch.Tensor:
    """A full ``(B, 1, T, T)`` mask (bool: True attends; float: additive) grown by ``pad`` positions that
    attend only to themselves (no row may be fully masked: sdpa would return NaN)."""
    if pad == 0:
        return mask
    b, _, t, _ = mask.shape
    eye = torch.eye(t + pad, dtype=torch.bool, device=mask.device)[None, None].expand(b, 1, -1, -1)
    if mask.dtype == torch.bool:
        out = eye.clone()
        out[:, :, :t, :t] = mask
        return out
    low = torch.finfo(mask.dtype).min
    out = torch.full((b, 1, t + pad, t + pad), low, dtype=mask.dtype, device=mask.device)
    out = out.masked_fill(eye, 0.0)
    out[:, :, :t, :t] = mask
    return out


def _check_right_padded(mask: torch.Tensor | None) -> None:
    if mask is None or mask.ndim != 2:
        return
    if bool((mask[:, 1:].long() > mask[:, :-1].long()).any()):
        raise ValueError(
            "sequence parallelism needs right-padded micro-batches (causal attention hides the padding)"
        )


def _packed_blocks(text_positions: torch.Tensor) -> list[Block] | None:
    """Attention blocks of a packed row (1, T') (padding continues the last sequence's positions, so it
    stays after every real token); None when the row is one plain sequence (causal sdpa)."""
    if text_positions.shape[0] != 1:  # padded micro-batches (right padded): one sequence per row, causal
        return None
    blocks = attention_blocks(text_positions[0])
    return None if len(blocks) == 1 and blocks[0][3] is None else blocks


class _SequenceShard:
    """Pre/post hooks on the text model: slice its inputs to this rank's tokens, gather its output."""

    def __init__(self, group: dist.ProcessGroup) -> None:
        self.group = group
        self.size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.length: int | None = None  # unpadded T of the running forward
        self.blocks: list[Block] | None = None  # a packed row's attention blocks (None: causal)

    def pre(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        embeds = kwargs.get("inputs_embeds")
        if args or embeds is None:
            raise ValueError("sequence parallelism slices the text model's inputs_embeds (keyword); got none")
        if kwargs.get("past_key_values") is not None or kwargs.get("use_cache"):
            raise ValueError(
                "sequence parallelism cannot run the text model on a key/value cache (the padded "
                "shared-prompt pass): use engine.packing=true or engine.share_prompts=false"
            )
        b, t, _ = embeds.shape
        s, r = self.size, self.rank
        pad = (-t) % s
        local = (t + pad) // s
        lo, hi = r * local, (r + 1) * local
        positions = _full_positions(kwargs.get("position_ids"), b, t, embeds.device)
        mask = kwargs.get("attention_mask")
        if pad:
            embeds = F.pad(embeds, (0, 0, 0, pad))
            tail = positions[..., -1:] + torch.arange(1, pad + 1, device=positions.device)
            positions = torch.cat([positions, tail], dim=-1)
        self.blocks = None
        if isinstance(mask, torch.Tensor) and mask.ndim == 4:
            full_mask = _pad_mask(mask, pad)
        else:
            _check_right_padded(mask)
            full_mask = None
            if positions.shape[0] == 4:  # text-position row present: packed rows (padding continues it)
                self.blocks = _packed_blocks(positions[0])
        kwargs.update(
            inputs_embeds=embeds[:, lo:hi].clone(),  # a view would keep the full-length storage alive
            position_ids=positions[..., lo:hi],
            attention_mask=full_mask,
            use_cache=False,
        )
        vis = kwargs.get("visual_pos_masks")  # Qwen3-VL DeepStack: (B, T) and per level (n_visual, H)
        if vis is not None:
            vis = F.pad(vis, (0, pad), value=False)
            deep = kwargs.get("deepstack_visual_embeds")
            if deep is not None:
                order = torch.cumsum(vis.reshape(-1).long(), 0).view(vis.shape) - 1  # row-major ordinal
                keep = order[:, lo:hi][vis[:, lo:hi]]
                kwargs["deepstack_visual_embeds"] = [d[keep.to(d.device)] for d in deep]
            kwargs["visual_pos_masks"] = vis[:, lo:hi]
        self.length = t
        return args, kwargs

    def post(self, module: nn.Module, args: tuple, kwargs: dict, output):
        full = gather_sequence(output.last_hidden_state, self.group, dim=1, grad_scale=float(self.size))
        output.last_hidden_state = full[:, : self.length]
        return output


def check_model_sequence_parallel(engine: EngineConfig, model: str, world_size: int) -> None:
    """:func:`~vrl.engines.config.check_sequence_parallel` for a checkpoint directory or registered tiny
    model (reads config.json only): call before ``init_distributed``."""
    if engine.sequence_parallel_size == 1:
        return
    from transformers import AutoConfig

    from vrl.models.tiny import resolve_model

    text = AutoConfig.from_pretrained(str(resolve_model(model))).get_text_config()
    check_sequence_parallel(engine, world_size, text.num_attention_heads, text.num_key_value_heads)


def parallelize_sequence(
    model: nn.Module, dist_ctx: DistContext, shard_vision_tower: bool = True
) -> nn.Module:
    """Make a Qwen-VL ``*ForConditionalGeneration`` run Ulysses sequence parallelism over
    ``dist_ctx.sp_group`` (in place; returns ``model``). Call before FSDP sharding. With
    ``shard_vision_tower`` each SP rank also encodes 1/S of the frames/images."""
    if dist_ctx.sp_size == 1:
        return model
    group = dist_ctx.sp_group
    assert group is not None, "DistContext with sp_size > 1 has an sp_group"
    text = model.model.language_model
    cfg = text.config
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    s = dist_ctx.sp_size
    if heads % s or (kv % s and s % kv):
        raise ValueError(
            f"sequence_parallel_size={s} cannot split {heads} attention heads / {kv} KV heads "
            "(S must divide the heads; the KV heads must divide by S or divide S)"
        )
    if getattr(cfg, "use_sliding_window", False):
        raise ValueError(
            "sequence parallelism does not support sliding-window attention (use_sliding_window)"
        )
    _register_attention()
    cfg._attn_implementation = ATTENTION_NAME
    shard = _SequenceShard(group)
    for layer in text.layers:
        setattr(layer.self_attn, GROUP_ATTR, group)
        setattr(layer.self_attn, SHARD_ATTR, shard)
    text.register_forward_pre_hook(shard.pre, with_kwargs=True)
    text.register_forward_hook(shard.post, with_kwargs=True)
    if shard_vision_tower:
        shard_vision(model.model.visual, group)
    logger.info(
        "sequence parallelism: S=%d, %d heads, %d KV heads%s", s, heads, kv, " (repeated)" if kv < s else ""
    )
    return model
