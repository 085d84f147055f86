"""Model-ready video tensors from cached uint8 frames, bit-identical to the HF Qwen-VL video processors.

With ``do_resize=False`` the HF video processors (Qwen2-VL/Qwen2.5-VL and Qwen3-VL) convert the frames to
float32, normalise them (``(x - mean·255) / (std·255)``, the fused rescale), reorder them into patches
with a float32 permute-copy and concatenate the videos: three full passes over a float32 tensor four
times the size of the frames. Frames from the cache are uint8, so the patch reordering can be done on the
uint8 data (a quarter of the bytes) and converted contiguously; the normalisation then runs in place with
the very same float32 operands and operation order, which keeps every value bit-identical (tested).

:func:`accelerate` installs this path on a loaded processor; inputs it does not cover (resizing, float
frames) go to the HF implementation unchanged. It also makes the processor's tokenizer encode the runs of
video placeholder tokens the processor expands by run length (same ids, a tenth of the time).
"""

from __future__ import annotations

import itertools
import os
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch


def _column_stats(proc: Any, norm: dict[str, Any], per_channel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, columns) mean and std of the patch layout (columns are channel-major), with HF's fused values."""
    mean, std, _ = proc._fuse_mean_std_and_rescale_factor(
        do_normalize=True,
        image_mean=tuple(norm["image_mean"]),
        image_std=tuple(norm["image_std"]),
        do_rescale=True,
        rescale_factor=norm["rescale_factor"],
        device=torch.device("cpu"),
    )
    return mean.repeat_interleave(per_channel)[None], std.repeat_interleave(per_channel)[None]


def normalize_patches(patches: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, D) patches → float32 ``(x - mean) / std`` with (1, D) column statistics: the HF video
    processor's operands and operation order, so the values are bit-identical to its output (IEEE float32
    subtraction and division, on CPU and GPU alike)."""
    out = patches.to(torch.float32)
    return out.sub_(mean.to(out.device)).div_(std.to(out.device))


def patch_statistics(video_processor: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, D) mean and std of ``video_processor``'s patch columns (its configured normalisation)."""
    norm = {
        "image_mean": video_processor.image_mean,
        "image_std": video_processor.image_std,
        "rescale_factor": video_processor.rescale_factor,
    }
    per_channel = video_processor.temporal_patch_size * video_processor.patch_size**2
    return _column_stats(video_processor, norm, per_channel)


def patchify_uint8(
    video: torch.Tensor,
    proc: Any,
    norm: dict[str, Any],
    patch_size: int,
    merge_size: int,
    temporal_patch_size: int,
    normalize: bool = True,
) -> tuple[torch.Tensor, list[int]]:
    """uint8 (T, C, H, W) → float32 (grid_t·grid_h·grid_w, C·temporal·patch·patch) patches and the grid;
    with ``normalize=False`` the same patches still uint8 (see :func:`accelerate`)."""
    frames, channels, height, width = video.shape
    if pad := -frames % temporal_patch_size:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
        frames += pad
    grid_t, grid_h, grid_w = frames // temporal_patch_size, height // patch_size, width // patch_size
    view = video.view(
        grid_t,
        temporal_patch_size,
        channels,
        grid_h // merge_size,
        merge_size,
        patch_size,
        grid_w // merge_size,
        merge_size,
        patch_size,
    ).permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    per_channel = temporal_patch_size * patch_size * patch_size
    # reorder the uint8 data (numpy's strided copy is ~2x torch's for these 14-byte runs), then convert
    # contiguously: a quarter of the bytes of HF's float32 permute-copy
    reordered = torch.from_numpy(parallel_copy(view.numpy(), torch.get_num_threads()))
    patches = reordered.view(grid_t * grid_h * grid_w, channels * per_channel)
    if not normalize:
        return patches, [grid_t, grid_h, grid_w]
    mean, std = _column_stats(proc, norm, per_channel)
    return normalize_patches(patches, mean, std), [grid_t, grid_h, grid_w]


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _pool() -> ThreadPoolExecutor:
    """This process's copy threads (a forked child gets its own: the parent's threads are not in it)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (
            os.getpid(),
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="patchify"),
        )
    return _POOL[1]


def parallel_copy(view: np.ndarray, threads: int) -> np.ndarray:
    """``np.ascontiguousarray(view)``, split over ``threads`` threads along the first axis that has
    enough rows (numpy releases the GIL while copying). The strided reorder of a 720p clip's patches
    takes 42 ms on one core and 23 on two (measured)."""
    out = np.empty(view.shape, dtype=view.dtype)
    axis = next((a for a, n in enumerate(view.shape[:3]) if n >= threads), None)
    if threads <= 1 or axis is None or out.nbytes < (1 << 22):
        np.copyto(out, view)
        return out
    bounds = np.linspace(0, view.shape[axis], threads + 1).astype(int)
    parts = [(slice(None),) * axis + (slice(lo, hi),) for lo, hi in itertools.pairwise(bounds)]
    for job in [_pool().submit(np.copyto, out[part], view[part]) for part in parts]:
        job.result()
    return out


def _fast_preprocess(self: Any, videos: list[torch.Tensor], do_resize: bool, **kwargs: Any) -> Any:
    exact = (
        not do_resize
        and kwargs.get("do_rescale")
        and kwargs.get("do_normalize")
        and all(v.dtype == torch.uint8 and v.dim() == 4 for v in videos)
    )
    if not exact:
        return type(self)._preprocess(self, videos, do_resize=do_resize, **kwargs)
    from transformers.feature_extraction_utils import BatchFeature

    patches, grids = [], []
    for video in videos:
        p, grid = patchify_uint8(
            video.cpu(),
            self,
            {k: kwargs[k] for k in ("image_mean", "image_std", "rescale_factor")},
            kwargs["patch_size"],
            kwargs["merge_size"],
            kwargs["temporal_patch_size"],
            normalize=not getattr(self, "vrl_uint8_patches", False),
        )
        patches.append(p)
        grids.append(grid)
    data = {
        "pixel_values_videos": patches[0] if len(patches) == 1 else torch.cat(patches),
        "video_grid_thw": torch.tensor(grids),
    }
    return BatchFeature(data=data, tensor_type=kwargs.get("return_tensors"))


#: tokenizer keyword arguments the run-length path reproduces; anything else takes the tokenizer's own path
_PLAIN_TEXT_KWARGS = {"return_tensors", "padding", "truncation", "max_length", "add_special_tokens"}


def _run_length_call(self: Any, text: Any = None, *args: Any, **kwargs: Any) -> Any:
    """The tokenizer's ``__call__``, encoding each run of the video placeholder as one token.

    The processor expands every video into thousands of ``<|video_pad|>`` strings and tokenizes the
    result (28 ms for the 11k placeholders of a 720p clip, as much as its patches cost). The placeholder is an added special token,
    so the tokenizer splits it out before anything else and each one becomes one id: encoding the text
    with every run shortened to one placeholder, then repeating that id run-length times, gives the same
    ids (tested against the plain processor for both families)."""
    cls = type(self).__mro__[1]
    token = getattr(self, "vrl_run_token", None)
    plain = (
        token is None
        or args
        or not isinstance(text, list)
        or len(text) != 1
        or not isinstance(text[0], str)
        or set(kwargs) - _PLAIN_TEXT_KWARGS
        or kwargs.get("padding") not in (None, False)
        or kwargs.get("truncation") not in (None, False)
        or kwargs.get("return_tensors") not in (None, "pt")
        or text[0].count(token) < 64
    )
    if plain:
        return cls.__call__(self, text, *args, **kwargs)
    import re

    from transformers.tokenization_utils_base import BatchEncoding

    pattern = f"(?:{re.escape(token)})+"
    runs = [len(m.group(0)) // len(token) for m in re.finditer(pattern, text[0])]
    short = re.sub(pattern, token, text[0])
    enc = cls.__call__(self, [short], **{k: v for k, v in kwargs.items() if k != "return_tensors"})
    if set(enc.keys()) - {"input_ids", "attention_mask"}:
        return cls.__call__(self, text, *args, **kwargs)
    ids = torch.tensor(enc["input_ids"][0], dtype=torch.long)
    token_id = self.convert_tokens_to_ids(token)
    where = (ids == token_id).nonzero().flatten()
    if len(where) != len(runs):
        return cls.__call__(self, text, *args, **kwargs)
    repeats = torch.ones_like(ids)
    repeats[where] = torch.tensor(runs)
    full = ids.repeat_interleave(repeats)
    if kwargs.get("max_length") is not None and full.numel() > kwargs["max_length"]:
        return cls.__call__(self, text, *args, **kwargs)
    data = {"input_ids": full[None], "attention_mask": torch.ones_like(full)[None]}
    if kwargs.get("return_tensors") != "pt":
        data = {k: v.tolist() for k, v in data.items()}
    return BatchEncoding(data, tensor_type=kwargs.get("return_tensors"))


def _tokenize_runs(tokenizer: Any, token: str) -> None:
    """Make ``tokenizer`` encode runs of ``token`` by run length (in place, through a subclass)."""
    if getattr(tokenizer, "vrl_run_token", None) is None:
        base = type(tokenizer)
        tokenizer.__class__ = type(f"RunLength{base.__name__}", (base,), {"__call__": _run_length_call})
    tokenizer.vrl_run_token = token


def accelerate(processor: Any, uint8_patches: bool = False) -> Any:
    """Give ``processor``'s video processor the exact uint8 fast path (in place); returns the processor.

    ``uint8_patches``: return ``pixel_values_videos`` as the reordered uint8 patches and leave the float32
    normalisation to the model (:mod:`vrl.models.pixels` makes it the model's first operation, on the
    accelerator): a quarter of the bytes in host memory and host-to-device copies, and no host time
    for the conversion. Only for models loaded with that hook."""
    video_processor = getattr(processor, "video_processor", None)
    if video_processor is not None and hasattr(video_processor, "patchify"):
        video_processor._preprocess = types.MethodType(_fast_preprocess, video_processor)
        video_processor.vrl_uint8_patches = uint8_patches
    token = getattr(processor, "video_token", None)
    if token is not None and getattr(processor, "tokenizer", None) is not None:
        _tokenize_runs(processor.tokenizer, token)
    return processor
