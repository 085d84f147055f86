"""The benchmark registry: the 22 benchmarks of the EasyVideoR1 report, MLVU's dev split and the toy suite.

``get_benchmark(name)`` accepts the registry name or an alias, ignoring case and punctuation
(``Video-MME`` → ``videomme``); an unknown name raises ``ValueError`` listing the known ones. The table is
an explicit list of modules, each defining ``BENCHMARK`` or ``BENCHMARKS``; it is built on first use.
"""

from __future__ import annotations

import importlib
import re

from eval_harness.benchmarks.base import STYLES, Benchmark

__all__ = ["STYLES", "Benchmark", "benchmark_names", "get_benchmark", "normalize_name"]

_MODULES = (
    "videomme",
    "mvbench",
    "motionbench",
    "mlvu",
    "tempcompass",
    "general",
    "reasoning",
    "stem",
    "videomathqa",
    "vsibench",
    "grounding",
    "ovobench",
    "toy",
)

#: report order: the groups of the EasyVideoR1 report (general, long, reasoning, STEM, spatial, grounding,
#: streaming; MLVU's dev split beside its test split), then the toy suite
ORDER = (
    "videomme",
    "videomme_v2",
    "mvbench",
    "tempcompass",
    "motionbench",
    "lvbench",
    "longvideobench",
    "mlvu",
    "mlvu_dev",
    "video_holmes",
    "minerva",
    "vcrbench",
    "videoreasonbench",
    "longvideo_reason",
    "mmvu",
    "videommmu",
    "videomathqa",
    "vsibench",
    "charades_sta",
    "stvg",
    "ovobench",
    "odvbench",
    "livesports3k_qa",
    "toy",
)

_table: dict[str, Benchmark] | None = None
_lookup: dict[str, str] = {}


def normalize_name(name: str) -> str:
    """Lower case without punctuation: ``Video-MME`` and ``video_mme`` both read ``videomme``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _build() -> dict[str, Benchmark]:
    table: dict[str, Benchmark] = {}
    lookup: dict[str, str] = {}
    for module_name in _MODULES:
        module = importlib.import_module(f"eval_harness.benchmarks.{module_name}")
        found = getattr(module, "BENCHMARKS", None) or [module.BENCHMARK]
        for bench in found:
            if bench.name in table:
                raise AssertionError(f"benchmark {bench.name!r} is defined twice")
            table[bench.name] = bench
            for spelling in (bench.name, bench.title, *bench.aliases):
                key = normalize_name(spelling)
                if lookup.get(key, bench.name) != bench.name:
                    raise AssertionError(f"alias {spelling!r} names both {lookup[key]} and {bench.name}")
                lookup[key] = bench.name
    assert set(table) == set(ORDER), sorted(set(table) ^ set(ORDER))
    _lookup.update(lookup)
    return {name: table[name] for name in ORDER}


def _registry() -> dict[str, Benchmark]:
    global _table
    if _table is None:
        _table = _build()
    return _table


def benchmark_names() -> list[str]:
    """Registry names in report order (the 22 benchmarks with ``mlvu_dev`` after ``mlvu``, then ``toy``)."""
    return list(_registry())


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (or an alias); ``ValueError`` listing the known names otherwise."""
    table = _registry()
    canonical = _lookup.get(normalize_name(name))
    if canonical is None:
        raise ValueError(f"Unknown benchmark {name!r}. Known benchmarks: {', '.join(table)}.")
    return table[canonical]
