"""Micro-batches through megatron-core's pipeline schedules (1F1B with PP > 1), log-probs and losses on the
last stage, results shared with every rank of the model-parallel group.

Every rank of a tensor × pipeline group receives the same trajectories (the trainer shards data by
data-parallel rank only), so every rank builds the same micro-batches and the same inputs; stage 0 uses the
tokens and pixels, the other stages only the positions. Megatron's point-to-point buffers have one shape
per schedule call, so with PP > 1 the micro-batches of a call are padded to a common (rows, length), and
under sequence parallelism lengths are padded to a multiple of TP: extra rows are padding tokens no loss
reads, extra positions come after every real token and causal attention never lets them influence real
ones.

The loss function returns a triple so that megatron does not rescale it (``calculate_per_token_loss``):
the trainer's loss is already normalised for the whole mini-batch, engines only sum micro-batch losses.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.distributed as dist

from vrl.batch import MicroBatch, response_logits_index
from vrl.engines.megatron import compat
from vrl.engines.megatron.logprobs import vocab_parallel_logprobs
from vrl.engines.megatron.model import QwenVLStage, StageInputs
from vrl.engines.megatron.parallel import ParallelGroups

_ROPE_KEYS = ("image_grid_thw", "video_grid_thw", "second_per_grid_ts")
_PIXEL_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw")


def mrope_positions(hf_model: Any, mb: MicroBatch) -> torch.Tensor:
    """(3, B, L) multimodal RoPE positions exactly as the HF model computes them for ``mb``.

    ``hf_model`` is the HF ``*Model`` (the skeleton's ``.model``; its ``get_rope_index`` reads only the config).
    """
    b, length = mb.input_ids.shape
    vision = mb.vision
    types = vision.get("mm_token_type_ids")
    if types is None or not any(k in vision for k in ("image_grid_thw", "video_grid_thw")):
        return torch.arange(length).view(1, 1, -1).expand(3, b, -1).clone()
    accepted = inspect.signature(hf_model.get_rope_index).parameters
    extra = {k: vision[k] for k in _ROPE_KEYS if k in vision and k in accepted}
    positions, _ = hf_model.get_rope_index(
        mb.input_ids, mm_token_type_ids=types, attention_mask=mb.attention_mask, **extra
    )
    return positions


def _pad(t: torch.Tensor, rows: int, length: int, value: int) -> torch.Tensor:
    """Pad the last two dims of ``t`` (..., B, L) to (..., rows, length)."""
    out = torch.full((*t.shape[:-2], rows, length), value, dtype=t.dtype)
    out[..., : t.shape[-2], : t.shape[-1]] = t
    return out


@dataclass
class Item:
    mb: MicroBatch
    inputs: StageInputs


def make_item(
    mb: MicroBatch, hf_model: Any, pad_id: int, shape: tuple[int, int] | None = None, device: Any = "cpu"
) -> Item:
    """The stage inputs of ``mb`` (a CPU micro-batch) on ``device``, padded to ``shape`` = (rows, length)."""
    rows, cols = response_logits_index(mb)
    targets = mb.input_ids[rows, (cols + 1).clamp(max=mb.input_ids.shape[1] - 1)]
    ids, pos = mb.input_ids, mrope_positions(hf_model, mb)
    if shape is not None:
        ids, pos = _pad(ids, *shape, pad_id), _pad(pos, *shape, 0)
    vision = {k: mb.vision[k].to(device) for k in _PIXEL_KEYS if k in mb.vision}
    inputs = StageInputs(*(t.to(device) for t in (ids, pos, rows, cols, targets)), vision=vision)
    return Item(mb.to(device), inputs)


class PipelineRunner:
    """Runs lists of micro-batches through one model stage with megatron's forward/backward schedule."""

    def __init__(
        self,
        groups: ParallelGroups,
        hf_model: Any,
        pad_id: int,
        num_microbatches: int,
        temperature: float,
        autocast: torch.dtype | None = None,
        device: Any = "cpu",
        sequence_multiple: int = 1,
    ) -> None:
        self.groups = groups
        self.hf_model = hf_model
        self.pad_id = pad_id
        self.num_microbatches = num_microbatches
        self.temperature = temperature
        self.autocast = autocast
        """Compute dtype of forward/backward (bfloat16 mixed precision over float32 parameters), or None."""
        self.device = device
        self.sequence_multiple = sequence_multiple
        """Sequence lengths are padded to a multiple of this (the TP size under sequence parallelism)."""

    # ---- planning -------------------------------------------------------------------------------------
    def calls(self, mbs: list[MicroBatch]) -> list[list[Item]]:
        """Schedule calls of at most ``num_microbatches`` items (padded to one shape with PP > 1) from CPU
        micro-batches."""
        out = []
        for i in range(0, len(mbs), self.num_microbatches):
            chunk = mbs[i : i + self.num_microbatches]
            shape = None
            if self.groups.pp > 1:
                shape = (max(m.size for m in chunk), self._length(max(m.input_ids.shape[1] for m in chunk)))
            items = []
            for m in chunk:
                own = shape or (m.size, self._length(m.input_ids.shape[1]))
                items.append(
                    make_item(
                        m,
                        self.hf_model,
                        self.pad_id,
                        own if own != tuple(m.input_ids.shape) else None,
                        self.device,
                    )
                )
            out.append(items)
        return out

    def _length(self, length: int) -> int:
        return -(-length // self.sequence_multiple) * self.sequence_multiple

    # ---- the schedule ----------------------------------------------------------------------------------
    def _token_logprobs(self, logits: torch.Tensor, item: Item, with_entropy: bool):
        """(B, R) masked log-probs (and entropy) from this rank's vocab-parallel response logits."""
        if self.temperature != 1.0:
            logits = logits / self.temperature
        start = self.groups.tp_rank * logits.shape[-1]
        logp, ent = vocab_parallel_logprobs(
            logits, item.inputs.targets, start, self.groups.tp_group, with_entropy=with_entropy
        )
        mask = item.mb.token_mask.to(logp.device)
        return logp * mask, (ent * mask if ent is not None else None)

    def _run(self, stage: QwenVLStage, items: list[Item], loss_of: Callable, forward_only: bool) -> list[Any]:
        from megatron.core.pipeline_parallel import get_forward_backward_func

        def forward_step(data_iterator, model):
            item = next(data_iterator)
            device = item.inputs.input_ids.device.type
            with torch.autocast(
                device, dtype=self.autocast or torch.float32, enabled=self.autocast is not None
            ):
                output = model(item.inputs)
            return output, partial(loss_of, item)

        seq = max(i.inputs.input_ids.shape[1] for i in items)
        rows = max(i.inputs.input_ids.shape[0] for i in items)
        with compat.cpu_redirect():
            return get_forward_backward_func()(
                forward_step_func=forward_step,
                data_iterator=iter(items),
                model=[stage],
                num_microbatches=len(items),
                seq_length=seq,
                micro_batch_size=rows,
                forward_only=forward_only,
            )

    def _from_last_stage(self, payload: list[Any] | None) -> list[Any]:
        """The last stage's per-micro-batch results, on every rank of the pipeline group."""
        if self.groups.pp == 1:
            return payload or []
        box = [payload if self.groups.last_stage else None]
        dist.broadcast_object_list(box, src=self.groups.pp_ranks[-1], group=self.groups.pp_group)
        return box[0]

    @torch.no_grad()
    def logprobs(
        self, stage: QwenVLStage, items: list[Item], with_entropy: bool
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per item: (B, R) masked log-probs and entropy, on every rank."""

        def loss_of(item: Item, logits: torch.Tensor):
            logp, ent = self._token_logprobs(logits, item, with_entropy)
            return torch.zeros(()), torch.ones((), dtype=torch.int), (logp, ent)

        store = self._run(stage, items, loss_of, forward_only=True)
        return self._from_last_stage(store if self.groups.last_stage else None)

    def train(
        self, stage: QwenVLStage, items: list[Item], loss_fn: Callable, need_entropy: bool
    ) -> list[tuple[dict[str, float], int]]:
        """Forward + backward of every item (gradients accumulate); per item (metrics, rows), every rank."""

        def loss_of(item: Item, logits: torch.Tensor):
            logp, ent = self._token_logprobs(logits, item, need_entropy)
            loss, metrics = loss_fn(logp, ent, item.mb)
            return loss, torch.ones((), dtype=torch.int), (dict(metrics), item.mb.size)

        store = self._run(stage, items, loss_of, forward_only=False)
        return self._from_last_stage(store if self.groups.last_stage else None)
