"""Fixtures of the eval-harness tests: the real annotation files, cached records, prediction helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


def _import_real_package() -> None:
    """Make ``import eval_harness`` find the package, not this test folder of the same name (pytest puts
    ``tests/`` on sys.path, where this folder would be found as an empty namespace package)."""
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    mod = sys.modules.get("eval_harness")
    if mod is not None and getattr(mod, "__file__", None) is None:
        for name in [n for n in sys.modules if n == "eval_harness" or n.startswith("eval_harness.")]:
            del sys.modules[name]


_import_real_package()

from eval_harness.benchmarks import get_benchmark  # noqa: E402
from eval_harness.records import load_benchmark  # noqa: E402

#: the public annotation files (tests may read /work/shared; the product never does)
ANNOTATIONS = Path("/work/shared/benchmarks/annotations")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def annotations_dir() -> Path:
    if not ANNOTATIONS.is_dir():
        pytest.skip(f"the public benchmark annotation files are not in {ANNOTATIONS}")
    return ANNOTATIONS


_CACHE: dict[str, list[dict]] = {}


@pytest.fixture(scope="session")
def real_records(annotations_dir: Path):
    """``real_records(name)`` → the validated records of a benchmark's real file (loaded once)."""

    def load(name: str) -> list[dict]:
        if name not in _CACHE:
            bench = get_benchmark(name)
            _CACHE[name] = load_benchmark(bench, bench.annotation_path(annotations_dir))
        return _CACHE[name]

    return load


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
