"""What flows between data, rollout, rewards and engines: processed prompts, trajectories, micro-batches.

A :class:`Prompt` is one record after the HF processor (token ids + vision tensors), computed once per
record per step. A :class:`Trajectory` is one sampled (or offline) response to it. Engines collate any
subset of trajectories into a padded :class:`MicroBatch`, so micro-batching and DP sharding never
re-run the processor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

#: processor outputs that are per-sample vision tensors, concatenated along dim 0 when collated
VISION_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
)


@dataclass
class Prompt:
    """One record, processed. ``input_ids`` (L,) int64; ``vision`` holds the VISION_KEYS it has."""

    record: dict[str, Any]
    input_ids: torch.Tensor
    vision: dict[str, torch.Tensor]
    text: str
    """The rendered prompt (chat template applied), for engines that tokenize themselves (vLLM)."""
    media: dict[str, Any] = field(default_factory=dict)
    """Raw media for the rollout engine: {"video": [(frames THWC uint8, meta)]} or {"image": [PIL]}."""
    uid: str = ""
    """Unique per prompt within a step (record id + repeat index)."""
    mm_token_type_ids: torch.Tensor | None = None
    """(L,) the processor's per-token modality ids; Qwen-VL needs them to build multimodal RoPE positions."""


@dataclass
class Trajectory:
    prompt: Prompt
    response_ids: torch.Tensor
    """(R,) int64 response tokens, EOS included when the model stopped."""
    response_text: str
    truncated: bool = False
    """Hit the response length limit without stopping."""
    offpolicy: bool = False
    """An offline trajectory (record's ``offline_output``) placed into the group."""
    group: int = 0
    """Group id: all trajectories of one prompt share it."""
    rewards: dict[str, float] = field(default_factory=dict)
    advantage: float | torch.Tensor = 0.0
    """A scalar broadcast over the response (outcome estimators) or (R,) per token (token-level ones)."""
    baseline: Trajectory | None = None
    """The greedy response to the same prompt, scored (ReMax's baseline); None unless advantage=remax."""
    old_logp: torch.Tensor | None = None
    """(R,) log-probs under the policy that sampled it (recomputed by the training engine)."""
    ref_logp: torch.Tensor | None = None
    """(R,) log-probs under the reference policy (only with a KL term)."""
    rollout_logp: torch.Tensor | None = None
    """(R,) log-probs the rollout engine sampled the response with (rollout correction); None offline."""

    @property
    def response_len(self) -> int:
        return int(self.response_ids.numel())


@dataclass
class SharedPrompts:
    """The distinct prompts of a micro-batch whose rows share prompts (a group's samples), for engines that
    run each prompt once and the responses on top of its key/value cache.

    Shapes: ``input_ids``/``attention_mask``/``mm_token_type_ids`` (U, W) right-padded; ``lens`` (U,);
    ``vision`` the U prompts' vision tensors; ``index`` (B,) the prompt of each row of the micro-batch.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lens: torch.Tensor
    index: torch.Tensor
    vision: dict[str, torch.Tensor]
    mm_token_type_ids: torch.Tensor | None = None

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of the HF model's forward for the prompts."""
        extra = {} if self.mm_token_type_ids is None else {"mm_token_type_ids": self.mm_token_type_ids}
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, **extra, **self.vision}

    def to(self, device: torch.device) -> SharedPrompts:
        return SharedPrompts(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            lens=self.lens.to(device),
            index=self.index.to(device),
            vision={k: v.to(device) for k, v in self.vision.items()},
            mm_token_type_ids=None if self.mm_token_type_ids is None else self.mm_token_type_ids.to(device),
        )


@dataclass
class PackedLayout:
    """Where the S sequences of a packed row of T tokens lie, and which positions score the responses.

    A sequence is one trajectory (prompt + response), or, with shared prompts, one distinct prompt followed
    by the responses of every row that shares it (each response attends to the prompt and to itself only).
    Shapes: ``cu_seqlens`` (S+1,) int32 sequence boundaries in the row; ``prompt_lens`` (S,) the prompt
    tokens at the start of each sequence; ``response_of`` (T,) int64, -1 on prompt tokens, else the
    micro-batch row whose response token it is; ``logit_index`` (B, R_max) the row position whose hidden
    state predicts each response token (0 on padding slots); ``targets`` (B, R_max) the response tokens.
    """

    cu_seqlens: torch.Tensor
    prompt_lens: torch.Tensor
    response_of: torch.Tensor
    logit_index: torch.Tensor
    targets: torch.Tensor
    shared: bool = False
    """Some sequence holds several responses: attention needs the explicit shared-prefix mask."""

    @property
    def num_tokens(self) -> int:
        return int(self.cu_seqlens[-1])

    def to(self, device: torch.device) -> PackedLayout:
        return PackedLayout(
            cu_seqlens=self.cu_seqlens.to(device),
            prompt_lens=self.prompt_lens.to(device),
            response_of=self.response_of.to(device),
            logit_index=self.logit_index.to(device),
            targets=self.targets.to(device),
            shared=self.shared,
        )


@dataclass
class MicroBatch:
    """Padded tensors for a list of trajectories (right padding).

    Shapes: ``input_ids``/``attention_mask`` (B, L); ``response_mask`` (B, L) marks positions whose
    *next-token* prediction is a response token, i.e. logits at position t score token t+1;
    per-response tensors (``old_logp``, ``ref_logp``, ``token_mask``) are (B, R_max) aligned to the
    response; ``advantages`` (B,), or (B, R_max) when a trajectory carries per-token advantages;
    ``offpolicy`` (B,).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    vision: dict[str, torch.Tensor]
    prompt_lens: torch.Tensor
    response_lens: torch.Tensor
    token_mask: torch.Tensor
    advantages: torch.Tensor
    offpolicy: torch.Tensor
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    rollout_logp: torch.Tensor | None = None
    """(B, R_max) the rollout engine's log-probs; NaN on rows without them (offline); None if no row has any."""
    shared: SharedPrompts | None = None
    """Set when rows share prompts and the engine asked for it (``collate(..., share_prompts=True)``)."""
    packed: PackedLayout | None = None
    """Set for a packed micro-batch (:func:`vrl.engines.packing.pack`): ``input_ids`` is then one row
    (1, T) holding every sequence without padding, and this says where each one lies."""

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of the HF model's forward (a packed row has no padding mask: the caller adds
        its position ids, which keep the sequences apart)."""
        if self.packed is not None:
            return {"input_ids": self.input_ids, **self.vision}
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, **self.vision}

    @property
    def size(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_tokens(self) -> int:
        return int(self.token_mask.sum().item())

    def to(self, device: torch.device) -> MicroBatch:
        moved = {
            k: (v.to(device) if isinstance(v, (torch.Tensor, SharedPrompts, PackedLayout)) else v)
            for k, v in self.__dict__.items()
            if k != "vision"
        }
        return MicroBatch(vision={k: v.to(device) for k, v in self.vision.items()}, **moved)


def cat_vision(prompts: list[Prompt]) -> dict[str, torch.Tensor]:
    """The prompts' vision tensors concatenated per key (dim 0). Raises when one key mixes dtypes (uint8
    video patches next to host-normalised float ones): concatenating would cast the uint8 values to float
    without normalising them."""
    out: dict[str, torch.Tensor] = {}
    for key in VISION_KEYS:
        parts = [p.vision[key] for p in prompts if key in p.vision]
        if not parts:
            continue
        if len({t.dtype for t in parts}) > 1:
            raise ValueError(
                f"{key} mixes dtypes {sorted(str(t.dtype) for t in parts)} in one batch: build every prompt "
                "with one processor (uint8 patches or host-normalised, not both)"
            )
        out[key] = torch.cat(parts, dim=0)
    return out


def _pad_stack(seqs: list[torch.Tensor], length: int, value: float) -> torch.Tensor:
    out = torch.full((len(seqs), length), value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : s.numel()] = s
    return out


def _advantages(trajs: list[Trajectory], width: int) -> torch.Tensor:
    """(B,) scalars, or (B, width) when any trajectory has per-token advantages (scalars are broadcast)."""
    if not any(isinstance(t.advantage, torch.Tensor) for t in trajs):
        return torch.tensor([float(t.advantage) for t in trajs], dtype=torch.float32)
    rows = [
        t.advantage.float().flatten()
        if isinstance(t.advantage, torch.Tensor)
        else torch.full((t.response_len,), float(t.advantage))
        for t in trajs
    ]
    return _pad_stack(rows, width, 0.0)


def _types(prompt: Prompt) -> torch.Tensor:
    if prompt.mm_token_type_ids is None:
        return torch.zeros_like(prompt.input_ids)
    return prompt.mm_token_type_ids.long()


def collate(trajs: list[Trajectory], pad_id: int, share_prompts: bool = False) -> MicroBatch:
    """Right-padded model inputs + response-aligned tensors for ``trajs``.

    ``share_prompts``: also collect the distinct prompts (by identity: a group's trajectories hold the same
    :class:`Prompt`) into ``MicroBatch.shared`` when some rows share one."""
    assert trajs, "empty micro-batch"
    seqs = [torch.cat([t.prompt.input_ids, t.response_ids]) for t in trajs]
    max_len = max(s.numel() for s in seqs)
    input_ids = _pad_stack(seqs, max_len, pad_id)
    attention_mask = _pad_stack([torch.ones_like(s) for s in seqs], max_len, 0)
    vision: dict[str, torch.Tensor] = {}
    if any(t.prompt.mm_token_type_ids is not None for t in trajs):
        types = [torch.cat([_types(t.prompt), torch.zeros(t.response_len, dtype=torch.long)]) for t in trajs]
        vision["mm_token_type_ids"] = _pad_stack(types, max_len, 0)
    vision.update(cat_vision([t.prompt for t in trajs]))
    return MicroBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        vision=vision,
        shared=_shared_prompts(trajs, pad_id) if share_prompts else None,
        **response_fields(trajs),
    )


def response_fields(trajs: list[Trajectory]) -> dict[str, Any]:
    """The response-aligned fields of a :class:`MicroBatch` (prompt and response lengths, token mask,
    advantages, log-probs), the same whatever layout the model inputs take (padded or packed)."""
    max_resp = max(max(t.response_len for t in trajs), 1)
    response_lens = torch.tensor([t.response_len for t in trajs])

    def resp(name: str) -> torch.Tensor | None:
        vals = [getattr(t, name) for t in trajs]
        if any(v is None for v in vals):
            return None
        return _pad_stack([v.float() for v in vals], max_resp, 0.0)

    return {
        "prompt_lens": torch.tensor([t.prompt.input_ids.numel() for t in trajs]),
        "response_lens": response_lens,
        "token_mask": (torch.arange(max_resp)[None, :] < response_lens[:, None]).float(),
        "advantages": _advantages(trajs, max_resp),
        "offpolicy": torch.tensor([t.offpolicy for t in trajs], dtype=torch.bool),
        "old_logp": resp("old_logp"),
        "ref_logp": resp("ref_logp"),
        "rollout_logp": _rows_or_nan([t.rollout_logp for t in trajs], max_resp),
    }


def _rows_or_nan(rows: list[torch.Tensor | None], width: int) -> torch.Tensor | None:
    """(B, width) float rows, NaN where a row is None; None when every row is."""
    if all(r is None for r in rows):
        return None
    return _pad_stack(
        [torch.full((width,), float("nan")) if r is None else r.float() for r in rows], width, 0.0
    )


def _shared_prompts(trajs: list[Trajectory], pad_id: int) -> SharedPrompts | None:
    slots: dict[int, int] = {}
    prompts: list[Prompt] = []
    for t in trajs:
        if id(t.prompt) not in slots:
            slots[id(t.prompt)] = len(prompts)
            prompts.append(t.prompt)
    if len(prompts) == len(trajs):
        return None  # nothing shared: one pass over the full sequences is cheaper
    ids = [p.input_ids for p in prompts]
    width = max(s.numel() for s in ids)
    has_types = any(p.mm_token_type_ids is not None for p in prompts)
    return SharedPrompts(
        input_ids=_pad_stack(ids, width, pad_id),
        attention_mask=_pad_stack([torch.ones_like(s) for s in ids], width, 0),
        lens=torch.tensor([s.numel() for s in ids]),
        index=torch.tensor([slots[id(t.prompt)] for t in trajs]),
        vision=cat_vision(prompts),
        mm_token_type_ids=_pad_stack([_types(p) for p in prompts], width, 0) if has_types else None,
    )


def response_logits_index(mb: MicroBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of the logits that predict each response token, flattened in (B, R_max) order.

    Logits at position ``prompt_len + j - 1`` predict response token ``j``. Padding slots of the
    (B, R_max) grid point at position 0 and are masked out by ``token_mask``.
    """
    b, r = mb.token_mask.shape
    dev = mb.token_mask.device
    cols = mb.prompt_lens.to(dev)[:, None] - 1 + torch.arange(r, device=dev)[None, :]
    cols = torch.where(mb.token_mask.bool(), cols, torch.zeros_like(cols))
    rows = torch.arange(b, device=dev)[:, None].expand(b, r)
    return rows, cols
