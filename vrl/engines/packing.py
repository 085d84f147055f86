"""Packed micro-batches: a micro-batch's sequences concatenated into one row, no padding.

A padded micro-batch computes ``B × L_max`` tokens; on video prompts of uneven length most of that can
be padding. Packing concatenates the sequences into one row of ``T = Σ len`` tokens and keeps them apart
inside attention. The pieces (shared interface, see the coordination notes' item 3):

- ``cu_seqlens`` (S+1,) int32: sequence boundaries in the row (what varlen attention kernels take);
- position ids (4, 1, T): row 0 the text position restarting at 0 in every sequence, rows 1-3 the 3-D
  M-RoPE positions computed per sequence before packing (the model's own ``get_rope_index`` on each
  sequence, so images, videos, Qwen3-VL's per-frame timestamps and DeepStack features are unchanged);
- vision tensors concatenated in sequence order (the model fills its placeholders by occurrence).

How attention stays inside each sequence, per attention implementation (transformers 5.19):

- ``flash_attention_2/3`` (GPU): transformers derives ``cu_seqlens`` from row 0 (positions restarting
  at 0) and calls the varlen kernel: no mask, no cross-sequence work;
- ``sdpa`` / ``eager`` (CPU and GPU): with row 0 present, no 2-D mask and no cache
  (``use_cache=False``), transformers builds a block-diagonal causal mask from row 0 (O(T²) booleans).
  Traps measured on this machine: with only the 3 M-RoPE rows, or with a cache object, no packed mask is
  built and sequences silently attend to each other (logit errors of 0.6).
- The FSDP engine packs under ``sdpa`` with :data:`VARLEN_SDPA` on the text model instead: the same sdpa,
  run on each sequence of the row separately (a sequence starts where row 0 is 0), which is what varlen
  kernels do: no O(T²) mask and no work across sequences (a dense block mask costs ``(Σ len)²``, more than
  the padded ``B × L_max²`` it replaces). Unpacked inputs go to plain sdpa unchanged.

Shared prompts (a GRPO group's n responses to one prompt): a sequence is then one distinct prompt followed
by every response to it, ``[P, R_1, ..., R_n]``; each response attends to the prompt and to its own earlier
tokens only, and takes the positions it would have right after the prompt. That is not block-diagonal,
so :func:`shared_prefix_mask` gives the explicit mask (``sdpa`` / ``eager`` only: varlen kernels take
block-diagonal sequences only). The prompt, vision tower included, runs once for the whole group, in the
same single pass as the responses (no key/value cache, so gradient checkpointing keeps working).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch

from vrl.batch import MicroBatch, PackedLayout, Prompt, Trajectory, cat_vision, response_fields
from vrl.engines.config import SHARED_PREFIX_ATTENTION

#: (input_ids (S, L), mm_token_type_ids (S, L), attention_mask (S, L), **vision grids) -> ((3, S, L), (S, 1))
RopeIndex = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def cu_seqlens(lengths: list[int] | torch.Tensor) -> torch.Tensor:
    """(S+1,) int32 boundaries of sequences of ``lengths`` concatenated in order: [0, l0, l0+l1, ...]."""
    lens = torch.as_tensor(lengths, dtype=torch.int32)
    return torch.cat([torch.zeros(1, dtype=torch.int32), torch.cumsum(lens, 0, dtype=torch.int32)])


def pack(trajs: list[Trajectory], pad_id: int, share_prompts: bool = False) -> MicroBatch:
    """The packed micro-batch of ``trajs``: one row of every sequence, no padding.

    Response-aligned tensors (advantages, log-probs, ``token_mask``: (B, R_max)) are those of
    :func:`vrl.batch.collate`, so a loss reads a packed micro-batch like a padded one. ``share_prompts``:
    trajectories holding the same :class:`Prompt` object form one sequence ``[P, R_1, ..., R_n]`` (only
    when some prompt is shared; otherwise one sequence per trajectory)."""
    assert trajs, "empty micro-batch"
    units = _sequences(trajs) if share_prompts else [[i] for i in range(len(trajs))]
    shared = len(units) < len(trajs)
    max_resp = max(max(t.response_len for t in trajs), 1)
    ids, types, response_of, prompt_lens, lens = [], [], [], [], []
    logit_index = torch.zeros(len(trajs), max_resp, dtype=torch.long)
    targets = torch.full((len(trajs), max_resp), pad_id, dtype=torch.long)
    start = 0
    for rows in units:
        prompt = trajs[rows[0]].prompt
        plen = prompt.input_ids.numel()
        ids.append(prompt.input_ids)
        types.append(_types(prompt))
        response_of.append(torch.full((plen,), -1, dtype=torch.long))
        offset = start + plen
        for b in rows:
            t = trajs[b]
            r = t.response_len
            ids.append(t.response_ids)
            types.append(torch.zeros(r, dtype=torch.long))
            response_of.append(torch.full((r,), b, dtype=torch.long))
            # response token 0 is scored by the prompt's last position, token j by response token j - 1
            logit_index[b, :r] = torch.cat([torch.tensor([start + plen - 1]), offset + torch.arange(r - 1)])[
                :r
            ]
            targets[b, :r] = t.response_ids
            offset += r
        prompt_lens.append(plen)
        lens.append(offset - start)
        start = offset
    row = torch.cat(ids)[None]
    vision = {}
    if any(t.prompt.mm_token_type_ids is not None for t in trajs):
        vision["mm_token_type_ids"] = torch.cat(types)[None]
    vision.update(cat_vision([trajs[rows[0]].prompt for rows in units]))
    layout = PackedLayout(
        cu_seqlens=cu_seqlens(lens),
        prompt_lens=torch.tensor(prompt_lens),
        response_of=torch.cat(response_of),
        logit_index=logit_index,
        targets=targets,
        shared=shared,
    )
    return MicroBatch(
        input_ids=row,
        attention_mask=torch.ones_like(row),
        vision=vision,
        packed=layout,
        **response_fields(trajs),
    )


def _types(prompt: Prompt) -> torch.Tensor:
    if prompt.mm_token_type_ids is None:
        return torch.zeros_like(prompt.input_ids)
    return prompt.mm_token_type_ids.long()


def _sequences(trajs: list[Trajectory]) -> list[list[int]]:
    """Rows grouped by prompt identity, in order of first appearance."""
    slots: dict[int, list[int]] = {}
    for i, t in enumerate(trajs):
        slots.setdefault(id(t.prompt), []).append(i)
    return list(slots.values())


def unpack(row: torch.Tensor, layout: PackedLayout) -> list[torch.Tensor]:
    """The S sequences of a packed ``row`` (T, ...) (or (1, T, ...)), as separate tensors."""
    row = row[0] if row.dim() > 1 and row.shape[0] == 1 and row.shape[1] == layout.num_tokens else row
    bounds = layout.cu_seqlens.tolist()
    return [row[a:b] for a, b in pairwise(bounds)]


def position_ids(mb: MicroBatch, rope_index: RopeIndex) -> torch.Tensor:
    """(4, 1, T) position ids of a packed micro-batch: row 0 text positions restarting at 0 per sequence,
    rows 1-3 the model's M-RoPE positions of each sequence as if it were alone.

    ``rope_index`` is the model's ``get_rope_index``; it runs on the sequences laid out as a padded batch
    (integer work only), exactly what the padded forward computes. Plain packing: each sequence is a whole
    trajectory. Shared prompts: the prompts go through ``rope_index`` and every response continues at the
    position after its prompt (the shared-prompt pass of :mod:`vrl.models.policy` does the same)."""
    layout = mb.packed
    assert layout is not None, "position_ids needs a packed micro-batch"
    dev = mb.input_ids.device
    row = mb.input_ids[0]
    types = mb.vision.get("mm_token_type_ids")
    types = torch.zeros_like(row) if types is None else types[0]
    bounds = layout.cu_seqlens.tolist()
    plens = layout.prompt_lens.tolist()
    # what rope_index sees per sequence: the whole trajectory, or only the shared prompt
    spans = [(a, a + p if layout.shared else b) for a, b, p in zip(bounds[:-1], bounds[1:], plens)]
    width = max(b - a for a, b in spans)
    ids = torch.zeros(len(spans), width, dtype=row.dtype, device=dev)
    kinds = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for s, (a, b) in enumerate(spans):
        ids[s, : b - a], kinds[s, : b - a], mask[s, : b - a] = row[a:b], types[a:b], 1
    grids = {k: v for k, v in mb.vision.items() if k.endswith("grid_thw") or k == "second_per_grid_ts"}
    rope, deltas = rope_index(input_ids=ids, mm_token_type_ids=kinds, attention_mask=mask, **grids)
    deltas = deltas.reshape(-1).to(dev)
    out = torch.zeros(4, layout.num_tokens, dtype=torch.long, device=dev)
    for s, (a, b) in enumerate(spans):
        out[0, a:b] = torch.arange(b - a, device=dev)
        out[1:, a:b] = rope[:, s, : b - a].to(dev)
    if layout.shared:
        owner = layout.response_of.to(dev)
        for s, (a, b) in enumerate(pairwise(bounds)):
            p = plens[s]
            resp = owner[a + p : b]
            # j = index of each token within its own response (responses follow each other in the row)
            first = torch.ones_like(resp, dtype=torch.bool)
            first[1:] = resp[1:] != resp[:-1]
            starts = torch.nonzero(first).flatten()
            seg = torch.cumsum(first.long(), 0) - 1
            j = torch.arange(resp.numel(), device=dev) - starts[seg]
            out[0, a + p : b] = p + j
            out[1:, a + p : b] = (p + int(deltas[s]) + j)[None]
    return out[:, None, :]


def shared_prefix_mask(layout: PackedLayout, attn_implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """(1, 1, T, T) attention mask of a packed row with shared prompts: token q sees token k iff k <= q,
    both lie in the same sequence, and k is a prompt token or a token of q's own response.

    ``sdpa`` takes it as booleans (True: attend); ``eager`` adds it to the scores (0 or the dtype's
    minimum). Memory is O(T²), like transformers' own packed mask on these implementations."""
    if attn_implementation not in SHARED_PREFIX_ATTENTION:
        raise ValueError(
            f"packed shared prompts need an explicit attention mask, which attn_implementation="
            f"{attn_implementation} cannot take; use engine.attn_implementation=sdpa or eager, or "
            "engine.share_prompts=false to pack whole trajectories (varlen attention)"
        )
    dev = layout.response_of.device
    t = layout.num_tokens
    lens = layout.cu_seqlens[1:] - layout.cu_seqlens[:-1]
    seq = torch.repeat_interleave(torch.arange(lens.numel(), device=dev), lens.to(dev).long())
    owner = layout.response_of
    pos = torch.arange(t, device=dev)
    allowed = (
        (pos[None, :] <= pos[:, None])
        & (seq[None, :] == seq[:, None])
        & ((owner[None, :] == -1) | (owner[None, :] == owner[:, None]))
    )
    if attn_implementation == "sdpa":
        return allowed[None, None]
    mask = torch.zeros(t, t, dtype=dtype, device=dev)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


VARLEN_SDPA = "vrl_varlen_sdpa"
"""Attention implementation name of :func:`varlen_sdpa` in transformers' registries."""

#: text-model attention implementations that read a packed row's structure, shared prompts included,
#: from the text position row (:func:`attention_blocks`): callers give them no (T, T) mask
POSITION_BLOCKED_ATTENTION: set[str] = {VARLEN_SDPA}

#: (start, prefix_end, end, mask): tokens [start, prefix_end) attend causally among themselves; tokens
#: [prefix_end, end) (the responses of a shared prompt) attend to keys [start, end) under ``mask``
#: (1, 1, end − prefix_end, end − start) bool, or there are none (mask None, prefix_end == end)
Block = tuple[int, int, int, "torch.Tensor | None"]


def attention_blocks(text_positions: torch.Tensor) -> list[Block]:
    """The attention blocks of one packed row from its text positions (T,).

    A sequence starts where the position is 0. Inside it, a break in the positions (a token whose
    position is not its predecessor's + 1) starts a branch: a response after a shared prompt, whose
    positions restart at the prompt length p (:func:`position_ids`); the first response follows the
    prompt without a break, so the prompt is the sequence's first p tokens, p read at the first break. The prefix (prompt, or the whole
    trajectory when nothing branches) is causal; each branch sees the whole prefix and its own earlier
    tokens, which is :func:`shared_prefix_mask` restricted to its rows. Memory: one mask of
    (response tokens × sequence length) per shared sequence, never (T × T)."""
    pos = text_positions.reshape(-1)
    t = pos.numel()
    brk = torch.ones(t, dtype=torch.bool, device=pos.device)
    brk[1:] = pos[1:] != pos[:-1] + 1
    starts = torch.nonzero(pos == 0).flatten().tolist()
    if starts[:1] != [0]:
        starts = [0, *starts]
    blocks: list[Block] = []
    for a, e in pairwise([*starts, t]):
        inner = torch.nonzero(brk[a + 1 : e]).flatten()
        if inner.numel() == 0:
            blocks.append((a, e, e, None))
            continue
        # responses restart at the prompt length: the second one's first position says where the first
        # one began (it follows the prompt without a break)
        pb = a + int(pos[a + 1 + int(inner[0])])
        assert a < pb <= a + 1 + int(inner[0]), "a response restarts at its prompt's length"
        starts_here = brk[pb:e].clone()
        starts_here[0] = True
        branch = torch.cumsum(starts_here.long(), 0)  # (n,) branch id of each response token
        n = e - pb
        mask = torch.ones(n, e - a, dtype=torch.bool, device=pos.device)
        own = torch.ones(n, n, dtype=torch.bool, device=pos.device).tril()
        mask[:, pb - a :] = (branch[:, None] == branch[None, :]) & own
        blocks.append((a, pb, e, mask[None, None]))
    return blocks


#: (q, k, v (B, H, Tq | Tk, D), bool mask or None for causal) -> (B, H, Tq, D)
Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def blocked_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, blocks: list[Block], attend: Attend
) -> torch.Tensor:
    """Attention of a packed row (B, H, T, D) block by block (:func:`attention_blocks`): the same values
    as one pass under the block-diagonal / shared-prefix mask, without building it. Keys and values are
    slices (views) of the row, so nothing of the row is copied before the kernels."""
    outs = []
    for a, pb, e, mask in blocks:
        outs.append(attend(query[:, :, a:pb], key[:, :, a:pb], value[:, :, a:pb], None))
        if mask is not None:
            outs.append(attend(query[:, :, pb:e], key[:, :, a:e], value[:, :, a:e], mask))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


_memo: list = [None, None]  # (weak reference to the last position tensor seen, its blocks)


def _blocks_of(position_ids: torch.Tensor) -> list[Block]:
    """:func:`attention_blocks` once per forward: every layer gets the same position tensor, so the
    masks are built once and the layers' saved activations share them."""
    import weakref

    ref = _memo[0]
    if ref is None or ref() is not position_ids:
        _memo[0], _memo[1] = weakref.ref(position_ids), attention_blocks(position_ids)
    return _memo[1]


def varlen_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' sdpa attention run per packed sequence of a one-row batch: q, k, v (1, H, T, D) are
    cut into :func:`attention_blocks` from the text position ids (1, T) (sequences restart at 0, shared
    prompts' responses branch off their prompt), each block gets sdpa, and the outputs (1, T, H, D) are
    concatenated. A given 4-D mask (an older caller's shared-prefix mask) is cut per sequence instead.

    Anything else (a padded batch, a cache, one sequence, the vision tower without position ids) is plain
    sdpa. Same values as sdpa over the full mask up to float rounding."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    t = query.shape[2]
    if position_ids is None or query.shape[0] != 1 or key.shape[2] != t or position_ids.shape[-1] != t:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if attention_mask is None:
        blocks = _blocks_of(position_ids)
        if len(blocks) == 1 and blocks[0][3] is None:
            return sdpa_attention_forward(module, query, key, value, None, **kwargs)

        def attend(q, k, v, mask):
            return sdpa_attention_forward(module, q, k, v, mask, **kwargs)[0].transpose(1, 2)

        return blocked_attention(query, key, value, blocks, attend).transpose(1, 2), None
    starts = torch.nonzero(position_ids.reshape(-1) == 0).flatten().tolist()
    if starts[:1] != [0]:
        starts = [0, *starts]
    if len(starts) == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    outs = []
    for a, b in pairwise([*starts, t]):
        mask = attention_mask[..., a:b, a:b]
        q, k, v = query[:, :, a:b], key[:, :, a:b], value[:, :, a:b]
        outs.append(sdpa_attention_forward(module, q, k, v, mask, **kwargs)[0])
    return torch.cat(outs, dim=1), None


def _varlen_sdpa_mask(**kwargs) -> torch.Tensor | None:
    """No mask where the batch has no padding mask (packed rows: :func:`varlen_sdpa` cuts them itself;
    single sequences: sdpa's causal flag); transformers' sdpa mask otherwise."""
    from transformers.masking_utils import sdpa_mask

    if kwargs.get("attention_mask") is None:
        return None
    return sdpa_mask(**kwargs)


def use_varlen_sdpa(model: torch.nn.Module) -> None:
    """Register :func:`varlen_sdpa` with transformers and select it for ``model``'s language model (the
    vision tower keeps its own implementation)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(VARLEN_SDPA, varlen_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(VARLEN_SDPA, _varlen_sdpa_mask)
    model.config.get_text_config()._attn_implementation = VARLEN_SDPA


def computed_tokens(mb: MicroBatch) -> int:
    """Tokens the language model computes for ``mb``: the row length when packed, ``B × L`` padded
    (``U × W + B × R`` for the padded shared-prompt pass)."""
    if mb.packed is not None:
        return mb.packed.num_tokens
    if mb.shared is not None:
        return mb.shared.input_ids.numel() + mb.token_mask.numel()
    return mb.input_ids.numel()


def real_tokens(mb: MicroBatch) -> int:
    """Tokens ``mb`` holds without padding: each distinct prompt once under prompt sharing, plus every
    response; each trajectory's prompt + response otherwise."""
    if mb.packed is not None:
        return mb.packed.num_tokens
    responses = int(mb.response_lens.sum())
    if mb.shared is not None:
        return int(mb.shared.lens.sum()) + responses
    return int(mb.prompt_lens.sum()) + responses
