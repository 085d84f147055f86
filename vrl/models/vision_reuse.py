"""A prompt's vision embeddings, computed once and reused by every response of its group.

A GRPO group holds n trajectories of one :class:`~vrl.batch.Prompt` object. Its media (images, video
temporal patches) give the same embeddings for all n, so the vision tower should run once per prompt,
not once per trajectory. The engine plans each micro-batch's media (:meth:`VisionReuse.plan`), the policy
runs the plan (:meth:`VisionReuse.features`) and hands the embeddings to the Hugging Face forward as
``mm_encoder_outputs`` (so the model never sees the pixels itself).

Rule (per training step and per model; counted in :attr:`VisionReuse.counts`):

- **one forward (micro-batch)**: each distinct media item (a prompt's j-th image or video) is encoded
  once, whatever the layout: padded rows each repeating the prompt, packed rows, shared prompts. Rows of
  the same prompt use the same embedding tensor, so their gradients add up in the one encoding.
- **one no-grad pass** (``compute_logprobs``: the old log-probs with the current weights, or the reference
  model with its own weights and its own :class:`VisionReuse`): embeddings are kept, detached, keyed by
  prompt, and later micro-batches of the pass reuse them. The cache lives for that pass only (the weights
  cannot change inside it) and is dropped at its end, so a weight update never meets a stale entry.
- **a pass with gradients** (the update): every micro-batch encodes its distinct items again, with
  gradients, never from the cache.

Vision-tower encodings per step: distinct items (old log-prob pass) + distinct items (reference pass)
+ Σ over update micro-batches of the distinct items in each. Under sequence parallelism each encoding is
split over the S ranks of the group (``split``: each rank receives only its part of the pixels).

Model code only: the engine injects the sequence-parallel split as a plain function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import nn

#: media kind -> (pixel key, grid key) of the model inputs
KINDS = {"image": ("pixel_values", "image_grid_thw"), "video": ("pixel_values_videos", "video_grid_thw")}

#: a grid (n, 3) of the items a forward encodes -> (first, last) patch rows this rank encodes
PixelSplit = Callable[[torch.Tensor], tuple[int, int]]


@dataclass
class MediaInputs:
    """One media kind of a micro-batch, as planned by :meth:`VisionReuse.plan`.

    ``keys`` (N items, the grid rows in model-input order): ``(kind, id(prompt), j)`` for the prompt's
    j-th item of this kind (plain values: FSDP's input casting rebuilds dataclasses it meets, so the key
    cannot be the prompt object itself; the prompts outlive the pass that uses the keys).
    ``grid`` (N, 3) every item's (t, h, w).
    ``encode``: ascending item indices encoded in this forward. ``pixels``: the patch rows of the encoded
    items, all of them, or this sequence-parallel rank's part of them (``(P_local, D)``)."""

    kind: str
    keys: list[tuple[str, int, int]]
    grid: torch.Tensor
    encode: list[int]
    pixels: torch.Tensor

    def to(self, device: torch.device) -> MediaInputs:
        return MediaInputs(self.kind, self.keys, self.grid.to(device), self.encode, self.pixels.to(device))


@dataclass
class VisionCounts:
    """What a :class:`VisionReuse` did (tests and metrics)."""

    encoded: int = 0
    """Media items the vision tower encoded (a sequence-parallel group counts an item once)."""
    reused: int = 0
    """Items taken from an earlier row of the same micro-batch or from the pass's cache."""
    calls: int = 0
    """Vision-tower calls (at most one per media kind and forward)."""


class VisionReuse:
    """Plans and runs the vision encodings of micro-batches (module docstring: the rule)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], list[torch.Tensor]] | None = None
        self.counts = VisionCounts()

    @contextmanager
    def caching(self) -> Iterator[None]:
        """Scope of one no-grad pass with fixed weights: embeddings encoded inside are reused inside."""
        self._cache = {}
        try:
            yield
        finally:
            self._cache = None

    def plan(
        self,
        vision: dict[str, torch.Tensor],
        prompts: list[object],
        split: PixelSplit | None = None,
    ) -> dict[str, MediaInputs]:
        """The media of a micro-batch whose ``vision`` tensors concatenate ``prompts``' own (in order,
        a prompt may repeat); pops the pixel tensors from ``vision`` (the model gets embeddings instead).

        Encoded: the first occurrence of each item not in the pass's cache (the cache is only read in a
        no-grad pass). ``split``: keep only this rank's part of the encoded pixel rows (copied, so the
        full tensor can be freed)."""
        grad = torch.is_grad_enabled()
        out: dict[str, MediaInputs] = {}
        for kind, (pix_key, grid_key) in KINDS.items():
            if grid_key not in vision or pix_key not in vision:
                continue
            grid = vision[grid_key]
            keys = [
                (kind, id(p), j)
                for p in prompts
                for j in range(int(p.vision[grid_key].shape[0]) if grid_key in p.vision else 0)
            ]
            if len(keys) != grid.shape[0]:
                raise ValueError(f"{grid_key} has {grid.shape[0]} rows for {len(keys)} media items")
            seen: set[tuple[str, int, int]] = set()
            encode = []
            for i, key in enumerate(keys):
                cached = not grad and self._cache is not None and key in self._cache
                if key not in seen and not cached:
                    encode.append(i)
                seen.add(key)
            pixels = vision.pop(pix_key)
            sizes = grid.prod(-1).tolist()
            starts = [0]
            for n in sizes:
                starts.append(starts[-1] + n)
            if len(encode) != len(keys):
                pieces = [pixels[starts[i] : starts[i + 1]] for i in encode]
                pixels = torch.cat(pieces) if pieces else pixels[:0]
            if split is not None:
                first, last = split(grid[encode])
                pixels = pixels[first:last].clone()
            out[kind] = MediaInputs(kind, keys, grid, encode, pixels)
        return out

    def features(self, inner: nn.Module, media: MediaInputs) -> SimpleNamespace:
        """``mm_encoder_outputs[kind]`` for the HF forward of ``inner`` (a Qwen-VL ``*Model``):
        ``pooler_output`` one (n_i, D) tensor per item, ``deepstack_features`` (Qwen3-VL) one such tuple
        per DeepStack level."""
        kind = media.kind
        assert all(k[0] == kind for k in media.keys)
        per_item: dict[tuple[str, int, int], list[torch.Tensor]] = {}
        if media.encode:
            encode_fn = getattr(inner, f"get_{kind}_features")
            out = encode_fn(media.pixels, media.grid[media.encode], return_dict=True)
            levels = [list(level) for level in (getattr(out, "deepstack_features", None) or [])]
            for slot, i in enumerate(media.encode):
                feats = [out.pooler_output[slot], *(level[slot] for level in levels)]
                per_item[media.keys[i]] = feats
            self.counts.encoded += len(media.encode)
            self.counts.calls += 1
            if self._cache is not None and not torch.is_grad_enabled():
                for i in media.encode:
                    self._cache[media.keys[i]] = [f.detach() for f in per_item[media.keys[i]]]
        items = []
        for key in media.keys:
            if key not in per_item:
                assert self._cache is not None and key in self._cache, f"{key} planned as cached"
                per_item[key] = self._cache[key]
            items.append(per_item[key])
        self.counts.reused += len(media.keys) - len(media.encode)
        levels = len(items[0]) - 1
        return SimpleNamespace(
            pooler_output=tuple(f[0] for f in items),
            deepstack_features=[tuple(f[1 + k] for f in items) for k in range(levels)],
        )
