"""The ``color_image`` family (the color question on a still image) and ``toy.val_families``."""

from collections import Counter

import numpy as np
import pytest

from vrl.toy import ToyConfig, ensure_toy_suite
from vrl.toy.spec import COLORS
from vrl.toy.suite import plan_split
from vrl.toy.tasks import family_names, get_family


def _answer(record):
    return record["solution"][len("<answer>") : -len("</answer>")]


def test_color_image_is_the_image_counterpart_of_color():
    fam = get_family("color_image")
    assert (fam.problem_type, fam.data_type) == ("multiple choice", "image")
    cfg = ToyConfig(num_train=60, num_val=0, families=["color", "color_image"], coverage_every=0)
    plan = plan_split(cfg, "train")
    images = [r for r, _ in plan if r["task"] == "color_image"]
    videos = [r for r, _ in plan if r["task"] == "color"]
    assert len(images) == len(videos) == 30
    assert {r["options"] == videos[0]["options"] for r in images} == {True}  # same options, same order
    for r, scene in plan:
        if r["task"] != "color_image":
            continue
        assert r["data_type"] == "image" and scene.kind == "image" and r["path"].startswith("images/")
        (obj,) = scene.objects
        assert (obj.vx, obj.vy) == (0, 0)
        assert r["problem"] == f"What color is the {obj.shape} in the image?"
        option = next(o[3:] for o in r["options"] if o.startswith(_answer(r) + "."))
        assert option == obj.color and obj.color in r["offline_output"]
    counts = Counter(_answer(r) for r in images)
    assert len(counts) == 6 and max(counts.values()) - min(counts.values()) <= 1, counts


def test_color_image_offline_output_scores_full_marks():
    from vrl.rewards import score

    plan = plan_split(ToyConfig(num_train=6, num_val=0, families=["color_image"], coverage_every=0), "train")
    for record, _ in plan:
        result = score(record, record["offline_output"])
        assert result["accuracy"] == 1.0 and result["format"] == 1.0, result


def test_color_image_renders_the_answer_color(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="Pillow reads the rendered image back")
    cfg = ToyConfig(
        num_train=3, num_val=0, families=["color_image"], coverage_every=0, out=str(tmp_path / "s")
    )
    root = ensure_toy_suite(cfg)
    for record, scene in plan_split(cfg, "train"):
        pixels = np.asarray(pil.open(root / record["path"]).convert("RGB"))
        assert pixels.shape[:2] == (scene.height, scene.width)
        (obj,) = scene.objects
        cx, cy = obj.x0 + obj.size // 2, obj.y0 + obj.size // 2  # the centre is inside every shape
        assert np.abs(pixels[cy, cx].astype(int) - np.array(COLORS[obj.color])).max() <= 8, record[
            "problem_id"
        ]


def test_val_families_give_identical_validation_records():
    """Two suites with other training families but the same validation families share their val split."""
    video = ToyConfig(num_train=8, num_val=12, families=["color", "boolean"])
    joint = ToyConfig(
        num_train=12,
        num_val=12,
        families=["color", "boolean", "color_image"],
        val_families=["color", "boolean"],
    )
    assert plan_split(video, "val") == plan_split(joint, "val")
    assert {r["task"] for r, _ in plan_split(joint, "train")} == {"color", "boolean", "color_image"}
    assert video.content_hash() != joint.content_hash()


def test_val_families_change_no_existing_hash_and_are_checked():
    assert "val_families" not in ToyConfig(families=["color"]).generation_fields()
    assert ToyConfig().generation_fields()["families"] == sorted(family_names())  # "all" names them
    with pytest.raises(ValueError, match=r"not among toy\.families"):
        ToyConfig(families=["color"], val_families=["boolean"]).validate()
    with pytest.raises(ValueError, match="Unknown toy families"):
        ToyConfig(val_families=["colour"]).validate()
