"""The uint8 fast path gives bit-identical processor outputs to the HF video processors, both families."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from cache_builder.fast_processing import accelerate
from cache_builder.processor_inputs import processor_kwargs
from vrl.models.loading import load_processor
from vrl.models.tiny import resolve_model


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
@pytest.mark.parametrize(("num_frames", "scale"), [(4, 1), (5, 1), (6, 8)])
def test_fast_path_equals_hf(name, num_frames, scale):
    """Patches and ids equal the plain HF processor's; scale 8 puts hundreds of placeholder tokens in a
    run, which the fast tokenizer encodes by run length."""
    processor = load_processor(resolve_model(name), fast_video=False)
    fast = accelerate(copy.deepcopy(processor))
    assert type(fast.tokenizer) is not type(processor.tokenizer)
    rng = np.random.RandomState(num_frames)
    factor = 28 if "2.5" in name else 32
    videos = [
        (rng.randint(0, 256, (num_frames, 3, 2 * scale * factor, 3 * scale * factor), dtype=np.uint8),
         {"fps": 10.0, "frames_indices": list(range(0, 2 * num_frames, 2)), "total_num_frames": 2 * num_frames}),
        (rng.randint(0, 256, (4, 3, factor, 2 * factor), dtype=np.uint8),
         {"fps": 5.0, "frames_indices": [0, 1, 2, 3], "total_num_frames": 4}),
    ]  # fmt: skip
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "video"}, {"type": "text", "text": "q"}]}
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    want = processor(text=[text], return_tensors="pt", **processor_kwargs(videos=videos))
    got = fast(text=[text], return_tensors="pt", **processor_kwargs(videos=videos))
    assert set(want) == set(got)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    if scale > 1:
        assert int((want["input_ids"] == fast.tokenizer.convert_tokens_to_ids(fast.video_token)).sum()) > 64
    # the tokenizer alone, lists and tensors, with the run-length path's fallbacks
    for kwargs in ({}, {"return_tensors": "pt"}, {"padding": "longest"}, {"return_offsets_mapping": True}):
        a, b = processor.tokenizer([text * 70], **kwargs), fast.tokenizer([text * 70], **kwargs)
        assert set(a) == set(b) and all(
            torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a if k != "offset_mapping"
        )


def test_resizing_still_goes_through_hf():
    processor = accelerate(load_processor(resolve_model("tiny-qwen2.5-vl")))
    frames = np.random.RandomState(0).randint(0, 256, (4, 3, 50, 70), dtype=np.uint8)
    out = processor.video_processor(videos=[torch.from_numpy(frames)], do_resize=True, return_tensors="pt")
    assert out["pixel_values_videos"].shape[0] == int(out["video_grid_thw"].prod())


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(4, 3, 2, 16, 2, 24), (6, 3, 8, 64, 2, 300), (1, 6, 8, 64, 2, 300)])
def test_parallel_copy_equals_a_plain_copy(threads, shape):
    from cache_builder.fast_processing import parallel_copy

    base = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    view = base.transpose(0, 3, 1, 4, 2, 5)
    np.testing.assert_array_equal(parallel_copy(view, threads), np.ascontiguousarray(view))


def test_parallel_copy_works_in_a_forked_child():
    import multiprocessing as mp

    from cache_builder.fast_processing import parallel_copy

    view = np.arange(8 << 20, dtype=np.uint8).reshape(4, 2 << 20).T
    parallel_copy(view, 2)  # the parent's pool exists now
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_copy_sum, (view.shape,)) == int(np.ascontiguousarray(view).sum(dtype=np.int64))


def _copy_sum(shape):
    from cache_builder.fast_processing import parallel_copy

    view = np.arange(8 << 20, dtype=np.uint8).reshape(shape[::-1]).T
    return int(parallel_copy(view, 2).sum(dtype=np.int64))
