"""Generate a toy suite on disk: ``train.jsonl``, ``val.jsonl``, ``videos/``, ``images/``, ``manifest.json``.

``ensure_toy_suite(cfg)`` is what every stage calls: it returns the suite directory, generating it only if
no complete suite with the same content hash is there. ``manifest.json`` is written last and marks a
complete suite; a file lock makes concurrent callers (array tasks, ranks) generate once. An interrupted
generation resumes: finished media files (written atomically) are kept when the config is unchanged.

Records (one JSON object per line, in the unified format)::

    problem_id, problem, problem_type, options, solution, path, data_type, offline_output,
    data_source="toy", task (the family), scene (the drawn scene: exact ground truth, see vrl.toy.scenes)

``path`` is relative to the suite directory; ``solution`` is ``<answer>…</answer>``; multiple-choice
options are ``["A. red", ...]`` with the letter as the solution; grounding boxes are pixels of the
original frame, times are seconds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vrl.file_lock import file_lock
from vrl.log import get_logger
from vrl.models.tiny import vrl_home
from vrl.toy.render import render
from vrl.toy.scenes import Scene
from vrl.toy.spec import GENERATOR_VERSION, ToyConfig
from vrl.toy.tasks import Draw, Family, family_names, get_family

logger = get_logger(__name__)

SPLITS = ("train", "val")
MANIFEST = "manifest.json"
_PARTIAL = ".partial"


def suite_dir(cfg: ToyConfig) -> Path:
    """Where the suite of ``cfg`` lives: ``cfg.out`` or ``$VRL_HOME/toy/toy-<content hash>``."""
    if cfg.out:
        return Path(cfg.out).expanduser()
    return vrl_home() / "toy" / f"toy-{cfg.content_hash()}"


def selected_families(cfg: ToyConfig, split: str = "train") -> list[Family]:
    """Families of ``split`` in registry order (so the suite does not depend on the order they were listed in)."""
    chosen = cfg.val_families if split == "val" and cfg.val_families else cfg.families
    names = [n for n in family_names() if not chosen or n in chosen]
    return [get_family(n) for n in names]


def _coverage(cfg: ToyConfig, family: Family, index: int, j: int) -> str | None:
    every = cfg.coverage_every
    if not every or j % every != every - 1:
        return None
    variants = family.coverage_variants(family.data_type)
    if family.data_type == "mixed":
        variants = (*family.coverage_variants("video"), *family.coverage_variants("image"))
    return variants[(j // every + index) % len(variants)]


def _media_path(split: str, i: int, scene: Scene) -> str:
    if scene.kind == "image":
        return f"images/{split}-{i:05d}.{scene.image_format}"
    return f"videos/{split}-{i:05d}.mp4"


def plan_split(cfg: ToyConfig, split: str) -> list[tuple[dict[str, Any], Scene]]:
    """The records of one split with their scenes (no file is written). Pure: same cfg → same output."""
    count = cfg.num_train if split == "train" else cfg.num_val
    families = selected_families(cfg, split)
    out = []
    for i in range(count):
        fam_index = i % len(families)
        family = families[fam_index]
        j = i // len(families)
        draw = Draw(
            cfg=cfg,
            family=family.name,
            split=split,
            j=j,
            rng=random.Random(f"toy/{cfg.seed}/{split}/{i}"),
            coverage=_coverage(cfg, family, fam_index, j),
        )
        item = family.make(draw)
        record = {
            "problem_id": f"toy-{split}-{i:05d}",
            "problem": item.problem,
            "problem_type": family.problem_type,
            "options": list(item.options),
            "solution": f"<answer>{item.answer}</answer>",
            "path": _media_path(split, i, item.scene),
            "data_type": item.scene.kind,
            "offline_output": f"<think>{item.think}</think><answer>{item.offline_answer or item.answer}</answer>",
            "data_source": "toy",
            "task": family.name,
            "scene": item.scene.to_dict(),
        }
        out.append((record, item.scene))
    return out


def ensure_toy_suite(cfg: ToyConfig) -> Path:
    """The suite directory of ``cfg``, generated first if it is missing, incomplete or of another config."""
    cfg.validate()
    out = suite_dir(cfg)
    if _is_complete(out, cfg):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.parent / f".{out.name}.lock"):
        if not _is_complete(out, cfg):
            generate(cfg, out)
    return out


def read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _is_complete(out: Path, cfg: ToyConfig) -> bool:
    manifest = read_manifest(out)
    return manifest is not None and manifest.get("content_hash") == cfg.content_hash()


def _prepare(out: Path, content_hash: str) -> None:
    """Drop a previous suite's manifest; keep media only from an interrupted run of the same config."""
    (out / MANIFEST).unlink(missing_ok=True)
    partial = out / _PARTIAL
    same = partial.is_file() and partial.read_text().strip() == content_hash
    if not same:
        for sub in ("videos", "images"):
            shutil.rmtree(out / sub, ignore_errors=True)
    for sub in ("videos", "images"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    partial.write_text(content_hash + "\n")


def _num_workers(cfg: ToyConfig) -> int:
    return cfg.num_workers or max(1, min(4, os.cpu_count() or 1))


def generate(cfg: ToyConfig, out: Path) -> dict[str, Any]:
    """Write the whole suite into ``out`` (media in parallel ffmpeg processes, manifest last)."""
    content_hash = cfg.content_hash()
    _prepare(out, content_hash)
    plans = {split: plan_split(cfg, split) for split in SPLITS}
    jobs = [(scene, out / rec["path"]) for plan in plans.values() for rec, scene in plan]
    todo = [(scene, path) for scene, path in jobs if not path.is_file()]
    logger.info("toy suite %s: rendering %d of %d media files", out, len(todo), len(jobs))
    with ThreadPoolExecutor(max_workers=_num_workers(cfg)) as pool:
        for _ in pool.map(lambda job: render(*job), todo):
            pass
    for split, plan in plans.items():
        _write_jsonl(out / f"{split}.jsonl", [rec for rec, _ in plan])
    manifest = {
        "content_hash": content_hash,
        "generator_version": GENERATOR_VERSION,
        "config": cfg.generation_fields(),
        "splits": {split: f"{split}.jsonl" for split in SPLITS},
        "num_records": {split: len(plan) for split, plan in plans.items()},
        "problem_types": dict(
            sorted(Counter(r["problem_type"] for p in plans.values() for r, _ in p).items())
        ),
        "tasks": dict(sorted(Counter(r["task"] for p in plans.values() for r, _ in p).items())),
    }
    _write_atomic(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (out / _PARTIAL).unlink(missing_ok=True)
    logger.info("toy suite ready: %s (%s)", out, manifest["num_records"])
    return manifest


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    _write_atomic(path, "".join(json.dumps(r, sort_keys=False) + "\n" for r in records))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
