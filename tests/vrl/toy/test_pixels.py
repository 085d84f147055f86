"""Ground truth checked against decoded pixels: what the records claim is what ffmpeg drew."""

import math
import subprocess

import numpy as np
import pytest
from toy_helpers import RAW_RGB, color_mask, decode, mask_box

from vrl.toy.scenes import Scene
from vrl.toy.spec import BACKGROUNDS, COLORS

TOL_PX = 2


def _videos(records):
    return [r for r in records if r["data_type"] == "video"]


def _plain(scene: Scene) -> bool:
    return scene.background in BACKGROUNDS


def test_frame_count_and_timestamps_match_the_scene(small_suite, records):
    for r in _videos(records):
        scene = Scene.from_dict(r["scene"])
        frames, times = decode(small_suite / r["path"])
        assert len(frames) == scene.num_frames, r["problem_id"]
        assert frames.shape[1:3] == (scene.height, scene.width)
        assert np.allclose(times, scene.frame_times(), atol=1e-3), r["problem_id"]


def test_objects_are_where_and_when_the_scene_says(small_suite, records):
    checked = 0
    for r in _videos(records):
        scene = Scene.from_dict(r["scene"])
        if not scene.objects or not _plain(scene):
            continue
        frames, times = decode(small_suite / r["path"])
        for obj in scene.objects:
            for frame, t in zip(frames, times):
                mask = color_mask(frame, COLORS[obj.color])
                if not obj.visible_at(t):
                    assert mask.sum() < 5, (r["problem_id"], t)
                    continue
                got, want = mask_box(mask), obj.box_at(t)
                assert got is not None, (r["problem_id"], t)
                assert max(abs(a - b) for a, b in zip(got, want)) <= TOL_PX, (r["problem_id"], t, got, want)
                checked += 1
    assert checked > 100


def test_images_show_their_objects_exactly(small_suite, records):
    for r in records:
        scene = Scene.from_dict(r["scene"])
        if scene.kind != "image" or not scene.objects:
            continue
        (frame,), _ = decode(small_suite / r["path"])
        exact = scene.image_format == "png"
        bg = np.array(BACKGROUNDS[scene.background])
        for obj in scene.objects:
            x1, y1, x2, y2 = obj.box_at(0)
            center = frame[(y1 + y2) // 2, (x1 + x2) // 2].astype(int)
            if exact:
                assert tuple(center) == COLORS[obj.color], r["problem_id"]
            else:
                assert np.abs(center - COLORS[obj.color]).max() < 40, r["problem_id"]
        # nothing is drawn outside the objects' boxes
        drawn = np.abs(frame.astype(int) - bg).max(axis=-1) > (0 if exact else 40)
        for obj in scene.objects:
            x1, y1, x2, y2 = obj.box_at(0)
            drawn[y1:y2, x1:x2] = False
        assert drawn.sum() == 0, r["problem_id"]


def test_words_are_drawn_centered(small_suite, records):
    for r in records:
        scene = Scene.from_dict(r["scene"])
        if scene.text is None:
            continue
        frames, _ = decode(small_suite / r["path"])
        box = mask_box(color_mask(frames[0], (255, 255, 255), tol=60))
        assert box is not None, r["problem_id"]
        x1, _, x2, _ = box
        assert abs((x1 + x2) / 2 - scene.width / 2) <= 4, (r["problem_id"], box)
        assert (x2 - x1) > scene.width / 4, (r["problem_id"], box)


def _visible_flags(path, scene: Scene) -> list[bool]:
    frames, _ = decode(path)
    rgb = COLORS[scene.objects[0].color]
    return [bool(color_mask(f, rgb).sum() > 20) for f in frames]


def _sampled(n: int, duration: float, fps: float = 2.0) -> list[int]:
    """Frame indices a 2-fps sampler takes (an even count, uniformly spread, as qwen-vl-utils does)."""
    count = max(2, 2 * round(duration * fps / 2))
    return [round(i * (n - 1) / (count - 1)) for i in range(count)]


def test_flash_count_is_visible_at_2_fps(small_suite, records):
    for r in _videos(records):
        if r["task"] != "count_flashes":
            continue
        scene = Scene.from_dict(r["scene"])
        flags = _visible_flags(small_suite / r["path"], scene)
        rises = sum(1 for a, b in zip([False, *flags], flags) if b and not a)
        assert rises == scene.notes["count"], r["problem_id"]
        sampled = [flags[i] for i in _sampled(len(flags), scene.duration)]
        assert sum(1 for a, b in zip([False, *sampled], sampled) if b and not a) == scene.notes["count"]


def test_temporal_grounding_interval_from_pixels(small_suite, records):
    import json

    for r in _videos(records):
        if r["task"] != "temporal_grounding":
            continue
        scene = Scene.from_dict(r["scene"])
        start, end = json.loads(r["solution"][8:-9])["time"]
        flags = _visible_flags(small_suite / r["path"], scene)
        shown = [t for t, f in zip(scene.frame_times(), flags) if f]
        step = max(b - a for a, b in zip(scene.frame_times(), scene.frame_times()[1:]))
        assert start <= shown[0] < start + step + 1e-6, r["problem_id"]
        assert end - step - 1e-6 < shown[-1] <= end, r["problem_id"]


def test_decord_reads_every_video(small_suite, records):
    decord = pytest.importorskip("decord")
    for r in _videos(records):
        reader = decord.VideoReader(str(small_suite / r["path"]))
        scene = Scene.from_dict(r["scene"])
        assert len(reader) == scene.num_frames, r["problem_id"]
        assert math.isclose(reader.get_avg_fps(), float(scene.fraction_rate), rel_tol=0.05) or scene.vfr


def test_decoding_twice_gives_identical_frames(small_suite, records):
    r = next(r for r in _videos(records) if r["scene"]["vfr"])
    first, _ = decode(small_suite / r["path"])
    again = subprocess.run(
        ["ffmpeg", "-v", "error", "-threads", "1", "-i", str(small_suite / r["path"]), *RAW_RGB],
        capture_output=True,
        check=True,
    ).stdout
    assert np.array_equal(first.reshape(-1), np.frombuffer(again, np.uint8))
