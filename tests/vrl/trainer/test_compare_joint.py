"""``python -m vrl.trainer.compare_joint``: the arms' configs and the video-only accuracy over seeds."""

import copy
import json
import math

import pytest

from vrl.config import merge
from vrl.toy.suite import plan_split
from vrl.trainer import presets
from vrl.trainer.compare_joint import (
    JOINT,
    VIDEO_LABEL,
    VIDEO_ONLY,
    arm_overrides,
    check_families,
    main,
    parse_args,
    record_counts,
    video_only,
)
from vrl.trainer.compare_mix import aggregate, markdown


def test_defaults_and_explicit_pixel_budgets():
    seeds, video, image, per_family, budget, args = parse_args(["trainer.total_steps=30", "seeds=[1,2]"])
    assert (seeds, video, image, per_family) == ([1, 2], ["color", "boolean"], ["color_image"], 300)
    assert budget == ["data.image.min_pixels=12544", "data.image.max_pixels=12544"]
    assert args == ["trainer.total_steps=30", "trainer.export_final=false"]
    _, _, _, _, budget, _ = parse_args(["data.image.max_pixels=25088", "video_families=[color]"])
    assert budget == ["data.image.min_pixels=12544", "data.image.max_pixels=25088"]
    with pytest.raises(SystemExit, match=r"toy\.families"):
        main(["toy.families=[color]"])  # refused before any run is launched


def test_arms_differ_only_in_the_suite_and_share_the_video_validation_records():
    arms = dict(arm_overrides(["color", "boolean"], ["color_image"], 300, ["data.image.max_pixels=12544"]))
    assert list(arms) == [VIDEO_ONLY, JOINT]
    cfgs = {arm: merge(copy.deepcopy(presets.toy()), overrides=o) for arm, o in arms.items()}
    video, joint = cfgs[VIDEO_ONLY], cfgs[JOINT]
    assert (video.toy.families, video.toy.num_train, video.toy.val_families) == (
        ["color", "boolean"],
        600,
        [],
    )
    assert (joint.toy.families, joint.toy.num_train) == (["color", "boolean", "color_image"], 900)
    assert joint.toy.val_families == ["color", "boolean"]
    assert video.data.image.max_pixels == joint.data.image.max_pixels == 12544
    assert video.trainer.total_steps == joint.trainer.total_steps  # the same budget
    assert video.data.video.max_pixels == joint.data.video.max_pixels
    assert plan_split(video.toy, "val") == plan_split(joint.toy, "val")  # the same video records


def test_families_must_match_their_role():
    with pytest.raises(ValueError, match="color_image is a image family"):
        check_families(["color", "color_image"], ["color_image"])
    with pytest.raises(ValueError, match="ocr is a mixed family"):
        check_families(["color"], ["ocr"])
    with pytest.raises(ValueError, match="train_per_family"):
        arm_overrides(["color"], ["color_image"], 0, [])


def _result(curves, chance, run_dir="runs/x"):
    return {"curves": curves, "chance": chance, "offline_groups": 0.0, "run_dir": run_dir, "wall_s": 60.0}


def test_video_accuracy_weights_families_by_records_and_drops_images(tmp_path):
    rows = [{"task": "color"}] * 30 + [{"task": "boolean"}] * 20 + [{"task": "color_image"}] * 10
    (tmp_path / "validation_after.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    counts = record_counts(tmp_path)
    assert counts == {"color": 30, "boolean": 20, "color_image": 10}
    res = _result(
        {"color": {0: 0.1, 20: 0.5}, "boolean": {0: 0.5, 20: 1.0}, "color_image": {0: 0.0, 20: 1.0}},
        {"color": 1 / 6, "boolean": 0.5, "color_image": 1 / 6},
    )
    out = video_only(res, ["color", "boolean"], counts)
    assert set(out["curves"]) == {"color", "boolean", VIDEO_LABEL}  # the image records are not in it
    assert math.isclose(out["curves"][VIDEO_LABEL][20], (0.5 * 30 + 1.0 * 20) / 50)  # 0.7, not (0.5+1)/2
    assert math.isclose(out["chance"][VIDEO_LABEL], (30 / 6 + 0.5 * 20) / 50)
    with pytest.raises(ValueError, match="no validation records of the video families"):
        video_only(res, ["color", "direction"], counts)


def test_mean_and_sd_over_seeds_of_the_video_records():
    counts = {"color": 30, "boolean": 30}
    runs = {
        arm: {
            seed: video_only(
                _result({"color": {20: c}, "boolean": {20: b}}, {"color": 1 / 6, "boolean": 0.5}),
                ["color", "boolean"],
                counts,
            )
            for seed, (c, b) in enumerate(vals, start=1)
        }
        for arm, vals in ((VIDEO_ONLY, [(0.4, 0.6), (0.6, 0.8), (0.8, 1.0)]), (JOINT, [(0.5, 0.5)] * 3))
    }
    agg = aggregate(runs)
    m, sd, n = agg["arms"][VIDEO_ONLY][VIDEO_LABEL]["end"]
    assert (round(m, 9), round(sd, 9), n) == (0.7, 0.2, 3)  # seeds 0.5, 0.7, 0.9
    table = markdown(agg, "Joint", [1, 2, 3], diff=(JOINT, VIDEO_ONLY))
    assert f"| family | chance | {VIDEO_ONLY} | {JOINT} | {JOINT} − {VIDEO_ONLY} |" in table
    assert f"| {VIDEO_LABEL} | 0.333 | 0.700 ± 0.200 | 0.500 ± 0.000 | -0.200 |" in table
