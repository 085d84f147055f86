"""``python -m vrl.trainer.compare_joint [key=value ...]``: joint image + video training against video only.

Two arms, each trained once per seed of ``seeds=[1,2,3]`` (``trainer.seed``) through the normal launcher
(``stage=train``), and both measured on the same video validation records:

- ``video only``: the toy suite's video families (``video_families``, default color and boolean);
- ``image + video``: the same video families plus their image counterparts (``image_families``, default
  color_image: the color question on a still image).

What is kept equal, and what is not:

- Budget: the same number of warm-start and RL steps, prompts per step and responses per prompt (every
  other key is the same in both arms). The joint arm's steps contain image prompts in place of some video
  prompts: its records are dealt in equal numbers over its families and shuffled, so about
  ``|image_families| / (|video_families| + |image_families|)`` of its prompts are images and it sees fewer
  video prompts than the video-only arm in the same number of steps.
- Training records: ``train_per_family`` per family in both arms (the video-only arm's default, 300, is
  the toy preset's 600 over two families), so each video family has as many records in both arms.
- Validation records: identical. The joint arm's suite sets ``toy.val_families`` to the video families,
  and toy records are drawn from their index, so both suites hold the same ``toy.num_val`` video records
  (the image records do not enter the validation at all). The reported number is the accuracy on those
  video records: per video family, and over all of them (each family's accuracy weighted by its number of
  validation records, read from the run's ``validation_*.jsonl``), mean ± sd over the seeds.
- Pixel budgets: separate keys, stated in the table. Video frames keep the preset's ``data.video.*``
  (the toy preset: 4 frames of 112×112 = 12544 pixels, 16 visual tokens per 2 frames); images get
  ``data.image.min_pixels = data.image.max_pixels = 12544`` (112×112, 16 visual tokens) unless given.

Writes ``<run_root>/train/<name>-compare.md`` (also printed), ``.json`` and ``.png`` like
:mod:`vrl.trainer.compare_mix`, whose helpers it uses.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from vrl.log import get_logger, setup_logging
from vrl.trainer import compare_mix as cm

logger = get_logger(__name__)

VIDEO_ONLY, JOINT = "video only", "image + video"
VIDEO_LABEL = "video records"
DEFAULT_VIDEO = ("color", "boolean")
DEFAULT_IMAGE = ("color_image",)
DEFAULT_TRAIN_PER_FAMILY = 300
#: the image budget set when none is given: 112×112, the toy preset's video frame size
DEFAULT_IMAGE_PIXELS = 12544
OWN_KEYS = ("seeds", "video_families", "image_families", "train_per_family")
SET_KEYS = ("stage", "name", "trainer.seed", "toy.families", "toy.val_families", "toy.num_train")


def _names(text: str) -> list[str]:
    return [s.strip().strip("'\"") for s in text.strip().strip("[]").split(",") if s.strip()]


def check_families(video: Sequence[str], image: Sequence[str]) -> None:
    """Every video family draws videos, every image family images (a mixed family could not be split)."""
    from vrl.toy.tasks import get_family

    if not video or not image:
        raise ValueError(f"need at least one video and one image family, got {list(video)} and {list(image)}")
    for names, kind in ((video, "video"), (image, "image")):
        for n in names:
            got = get_family(n).data_type
            if got != kind:
                raise ValueError(f"{n} is a {got} family; the {kind} families must draw {kind}s")
    if set(video) & set(image):
        raise ValueError(f"a family cannot be in both arms' roles: {sorted(set(video) & set(image))}")


def arm_overrides(
    video: Sequence[str], image: Sequence[str], per_family: int, image_pixels: Sequence[str]
) -> list[tuple[str, list[str]]]:
    """The two arms' ``key=value`` overrides. The video-only arm leaves ``toy.val_families`` empty (its
    validation split is its families): its suite is then the toy preset's own when the families agree."""
    if per_family < 1:
        raise ValueError(f"train_per_family must be >= 1, got {per_family}")
    check_families(video, image)
    v, vi = ",".join(video), ",".join([*video, *image])
    return [
        (VIDEO_ONLY, [f"toy.families=[{v}]", f"toy.num_train={per_family * len(video)}", *image_pixels]),
        (
            JOINT,
            [
                f"toy.families=[{vi}]",
                f"toy.val_families=[{v}]",
                f"toy.num_train={per_family * (len(video) + len(image))}",
                *image_pixels,
            ],
        ),
    ]


def parse_args(argv: Sequence[str]) -> tuple[list[int], list[str], list[str], int, list[str], list[str]]:
    """(seeds, video families, image families, train_per_family, image budget keys, keys for every run)."""
    seeds, rest = cm.take_seeds(argv)
    video = _names(cm.value(rest, "video_families", ",".join(DEFAULT_VIDEO)))
    image = _names(cm.value(rest, "image_families", ",".join(DEFAULT_IMAGE)))
    try:
        per_family = int(cm.value(rest, "train_per_family", str(DEFAULT_TRAIN_PER_FAMILY)))
    except ValueError as e:
        raise ValueError("train_per_family must be an integer") from e
    args = [a for a in rest if a.split("=", 1)[0] not in OWN_KEYS]
    cm.refuse_keys(args, SET_KEYS, "compare_joint")
    budget = [a for a in args if a.startswith(("data.image.min_pixels=", "data.image.max_pixels="))]
    args = [a for a in args if a not in budget]
    if not any(a.startswith("trainer.export_final=") for a in args):
        args.append("trainer.export_final=false")  # nothing reads the exported model of a comparison
    if not any(a.startswith("data.image.max_pixels=") for a in budget):
        budget.append(f"data.image.max_pixels={DEFAULT_IMAGE_PIXELS}")
    if not any(a.startswith("data.image.min_pixels=") for a in budget):
        budget.insert(0, f"data.image.min_pixels={DEFAULT_IMAGE_PIXELS}")
    return seeds, video, image, per_family, budget, args


# ---- reading a run: video records only -------------------------------------------------------------
def record_counts(run_dir: Path) -> dict[str, int]:
    """Validation records per task family, from the per-record rows of one of the run's validations."""
    files = sorted(Path(run_dir).glob("validation_*.jsonl"))
    if not files:
        return {}
    counts: dict[str, int] = {}
    for line in files[0].read_text().splitlines():
        if line.strip():
            task = str(json.loads(line).get("task") or "other")
            counts[task] = counts.get(task, 0) + 1
    return counts


def video_only(result: cm.RunResult, video: Sequence[str], counts: Mapping[str, int]) -> cm.RunResult:
    """Keep the video families' curves and add ``video records``: at each step where every video family
    was validated, the accuracy over all their records (each family weighted by its record count).
    Image families' records never enter it, also when the validation split holds some."""
    missing = [f for f in video if counts.get(f, 0) < 1]
    if missing:
        raise ValueError(f"no validation records of the video families {missing} in {result.get('run_dir')}")
    curves = {f: dict(result["curves"].get(f, {})) for f in video}
    steps = set.intersection(*(set(curves[f]) for f in video)) if video else set()
    total = sum(counts[f] for f in video)
    combined = {s: sum(curves[f][s] * counts[f] for f in video) / total for s in sorted(steps)}
    chance = {f: result["chance"][f] for f in video if f in result["chance"]}
    if len(chance) == len(video):
        chance[VIDEO_LABEL] = sum(chance[f] * counts[f] for f in video) / total
    return {
        **result,
        "curves": {**curves, VIDEO_LABEL: combined},
        "chance": chance,
        "video_records": {f: counts[f] for f in video},
    }


def budget_note(run_dir: Path) -> str:
    """The run's pixel budgets and step budget, read back from its resolved config."""
    from vrl.config import load
    from vrl.trainer.config import Config

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return f"(no config.yaml in {run_dir})"
    c = load(Config, path)
    v, i = c.data.video, c.data.image
    return (
        f"toy.families={c.toy.families} (toy.num_train={c.toy.num_train}), validation families "
        f"{c.toy.val_families or c.toy.families} (toy.num_val={c.toy.num_val}); video frames "
        f"{v.min_frames}-{v.max_frames} at data.video.min_pixels={v.min_pixels}, max_pixels={v.max_pixels}; images "
        f"data.image.min_pixels={i.min_pixels}, max_pixels={i.max_pixels}; {c.warmup.sft_steps} warm-start steps, "
        f"{c.trainer.total_steps} RL steps of {c.trainer.rollout_batch_size} prompts × {c.rollout.n} responses"
    )


def notes(runs: Mapping[str, Mapping[int, cm.RunResult]], image: Sequence[str]) -> list[str]:
    n_video = next((r["video_records"] for rs in runs.values() for r in rs.values()), {})
    lines = [
        f"Measured on the video validation records only ({sum(n_video.values())}: "
        + ", ".join(f"{n} {f}" for f, n in n_video.items())
        + "), identical in both arms; `video records` weights each family by its record count. "
        f"The image families ({', '.join(image)}) train the joint arm only and are not validated.",
        "Same budget in both arms: the same warm-start and RL steps, prompts per step and responses per prompt; "
        "the joint arm's steps hold image prompts in place of some of the video prompts.",
        "",
    ]
    for arm, by_seed in runs.items():
        rs = list(by_seed.values())
        if rs:
            wall = sum(r["wall_s"] for r in rs) / len(rs)
            lines.append(f"- {arm}: {budget_note(Path(rs[0]['run_dir']))}; {wall / 60:.1f} min per run")
            lines.append(f"  run folders {', '.join(r['run_dir'] for r in rs)}")
    return lines


TITLE = "Joint image + video training against video only (video validation records)"
XLABEL = "global step (warm-start steps, then RL steps)"


def main(argv: Sequence[str]) -> int:
    setup_logging()
    try:
        seeds, video, image, per_family, budget, args = parse_args(argv)
        arms = arm_overrides(video, image, per_family, budget)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    name = f"compare-joint-{time.strftime('%Y%m%d-%H%M%S')}"

    def read(run_dir: Path) -> cm.RunResult:
        return video_only(cm.read_run(run_dir), video, record_counts(run_dir))

    runs = cm.launch_arms(arms, seeds, args, name, read)
    if isinstance(runs, int):
        return runs
    agg = cm.aggregate(runs)
    table = cm.markdown(agg, TITLE, seeds, notes(runs, image), diff=(JOINT, VIDEO_ONLY))
    out = Path(cm.value(args, "run_root", "runs")) / "train" / f"{name}-compare"
    cm.write_outputs(out, table, runs, agg, TITLE, XLABEL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
