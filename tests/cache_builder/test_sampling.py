"""Frame count, indices and sizes against qwen-vl-utils' own functions (the reference)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cache_builder.errors import MediaError
from cache_builder.sampling import image_size, plan_frames, resize_frames, smart_resize, video_size
from cache_builder.spec import VideoSpec

vp = pytest.importorskip("qwen_vl_utils.vision_process")


@settings(max_examples=300, deadline=None)
@given(
    h=st.integers(2, 4000), w=st.integers(2, 4000), factor=st.sampled_from([28, 32]),
    lo=st.integers(1, 400_000), span=st.integers(0, 3_000_000),
)  # fmt: skip
def test_smart_resize_matches(h, w, factor, lo, span):
    if max(h, w) / min(h, w) > 200:
        with pytest.raises(MediaError):
            smart_resize(h, w, factor, lo, lo + span)
        return
    assert smart_resize(h, w, factor, lo, lo + span) == vp.smart_resize(h, w, factor, lo, lo + span)


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(1, 5000),
    fps=st.sampled_from([23.976023976023978, 25.0, 29.97002997002997, 30.0, 60.0, 7.5]),
    mode=st.sampled_from(["fps", "num_frames"]),
    rate=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    nframes=st.integers(2, 64),
    min_frames=st.integers(1, 16),
    max_frames=st.integers(2, 200),
)
def test_frame_plan_matches(total, fps, mode, rate, nframes, min_frames, max_frames):
    if mode == "fps":
        spec = VideoSpec(fps=rate, min_frames=min_frames, max_frames=max_frames)
    else:
        spec = VideoSpec(num_frames=nframes)
    ele = spec.to_qwen_ele()
    try:
        n_ref = vp.smart_nframes(ele, total_frames=total, video_fps=fps)
    except ValueError:
        with pytest.raises(MediaError):
            plan_frames(spec, total, fps)
        return
    plan = plan_frames(spec, total, fps)
    assert len(plan.indices) == n_ref
    assert plan.indices == torch.linspace(0, total - 1, n_ref).round().long().tolist()
    assert plan.sample_fps == n_ref / max(total, 1e-6) * fps
    assert plan.total_num_frames == total


@pytest.mark.parametrize("start,end", [(0.5, None), (None, 1.2), (0.3, 1.7), (0.0, 100.0)])
def test_time_range_matches(start, end):
    spec = VideoSpec(fps=4.0, video_start=start, video_end=end)
    total, fps = 60, 29.97002997002997
    ele = {k: v for k, v in spec.to_qwen_ele().items()}
    s, e, count = vp.calculate_video_frame_range(ele, total, fps)
    n = vp.smart_nframes(ele, total_frames=count, video_fps=fps)
    plan = plan_frames(spec, total, fps)
    assert plan.indices == torch.linspace(s, e, n).round().long().tolist()
    assert plan.total_num_frames == count


@pytest.mark.parametrize("family,factor", [("qwen2_5_vl", 28), ("qwen3_vl", 32)])
@pytest.mark.parametrize("nframes,h,w", [(4, 360, 640), (64, 720, 1280), (768, 1080, 1920), (2, 97, 161)])
def test_video_size_matches_fetch_video_rule(family, factor, nframes, h, w):
    spec = VideoSpec(family=family, max_pixels=None)
    min_pixels = spec.min_pixels
    max_pixels = max(min(768 * factor * factor, spec.total_pixels / nframes * 2), int(min_pixels * 1.05))
    assert video_size(spec, nframes, h, w) == vp.smart_resize(h, w, factor, min_pixels, max_pixels)


def test_image_size_and_ratio_limit():
    from cache_builder.spec import ImageSpec

    assert image_size(ImageSpec(), 48, 64) == vp.smart_resize(48, 64, 28, 4 * 784, 16384 * 784)
    with pytest.raises(MediaError) as err:
        image_size(ImageSpec(), 2, 402)
    assert err.value.reason == "aspect_ratio"


def test_resize_is_torchvision_resize():
    tvf = pytest.importorskip("torchvision.transforms.functional")
    from torchvision.transforms import InterpolationMode

    frames = torch.randint(0, 256, (3, 3, 37, 53), dtype=torch.uint8)
    ref = tvf.resize(frames, [56, 84], interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert torch.equal(resize_frames(frames, (56, 84)), ref)
    assert resize_frames(frames, (37, 53)) is frames
