"""Stage ``toy``: generate the toy video suite (``python jobs/submit.py stage=toy [num_train=...]``).

One job, one process: ffmpeg calls run in a small thread pool. Rerunning with the same settings finds
the complete suite and returns at once; an interrupted run resumes with the media already written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vrl.launch import preflight
from vrl.launch.config import LaunchConfig
from vrl.launch.context import RunContext
from vrl.log import get_logger
from vrl.toy.spec import ToyConfig
from vrl.toy.suite import ensure_toy_suite, read_manifest, suite_dir

logger = get_logger(__name__)


@dataclass
class Config(ToyConfig, LaunchConfig):
    """Launch keys and the toy suite's keys, all top-level (``seed=1 num_train=600 out=...``)."""


def check(cfg: Config) -> None:
    """Before submission: the suite's folder (``out``, else under ``$VRL_HOME``) holds this suite or can
    be written."""
    out = suite_dir(cfg)
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is None or manifest.get("content_hash") != cfg.content_hash():
        preflight.writable_dir(out, "out" if cfg.out else "VRL_HOME")


def run(cfg: Config, ctx: RunContext) -> dict[str, Any]:
    """Generate (or find) the suite; return where it is and what it holds."""
    out = ensure_toy_suite(cfg)
    manifest = read_manifest(out)
    assert manifest is not None, f"suite at {out} has no manifest after generation"
    summary = {
        "suite_dir": str(out),
        "train": str(out / manifest["splits"]["train"]),
        "val": str(out / manifest["splits"]["val"]),
        "num_records": manifest["num_records"],
        "problem_types": manifest["problem_types"],
        "content_hash": manifest["content_hash"],
    }
    logger.info("toy suite: %s", summary)
    return summary
