"""``python -m cache_builder build|index|verify|stats key=value ...``

- ``build``: decode the media of a records file into a cache (``launcher=local|array|mpi``).
- ``index``: (re)write the index of a cache after array tasks ran by hand.
- ``verify``: check completeness, hashes and (when spec keys are given) the spec; exit 1 on problems.
- ``stats``: counts, bytes, compression, failures.

Configuration errors print a message on stderr and exit with status 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from cache_builder.config import CacheConfig
from vrl.config import ConfigError, parse, to_yaml
from vrl.log import setup_logging

COMMANDS = ("build", "index", "verify", "stats")
SPEC_KEYS = {
    "family", "fps", "num_frames", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels",
    "video_start", "video_end", "image_min_pixels", "image_max_pixels",
}  # fmt: skip


@dataclass
class VerifyConfig(CacheConfig):
    check_data: bool = True
    """Read every entry and compare its frame checksum."""
    check_sources: bool = True
    """Re-hash source files found under video_root and compare them with the keys."""
    json: bool = False
    """Print the report as JSON."""


@dataclass
class StatsConfig(CacheConfig):
    json: bool = False
    """Print the statistics as JSON."""


def _print_summary(summary: dict) -> None:
    print(
        f"entries {summary['entries']} | this run: stored {summary['stored']}, skipped {summary['skipped']}, "
        f"failed {summary['failed']} | {summary['items_per_s']:.2f} videos/s | {summary['mb_written']:.1f} MB written "
        f"(raw {summary['mb_raw']:.1f} MB, ratio {summary['compression_ratio']:.2f}) | failures total "
        f"{summary['failures_total']} {summary['failures_by_reason'] or ''}"
    )
    print(json.dumps(summary, sort_keys=True))


def _build(argv: list[str]) -> int:
    cfg, show = parse(CacheConfig, argv)
    setup_logging(cfg.log_level)
    if show:
        print(to_yaml(cfg, with_docs=True))
    if not cfg.input:
        raise ConfigError("build needs input=<records.json|jsonl>.")
    from cache_builder import build

    if cfg.launcher == "mpi":
        from cache_builder.mpi import build_mpi

        summary = build_mpi(cfg)
    elif cfg.launcher == "array":
        task = build.plan_shards(cfg)[build.array_task_index()]
        print(json.dumps(build.build_shard(cfg, task), sort_keys=True))
        return 0
    else:
        summary = build.build_local(cfg)
    if summary is not None:
        _print_summary(summary)
    return 0


def _index(argv: list[str]) -> int:
    cfg, _ = parse(CacheConfig, argv)
    setup_logging(cfg.log_level)
    from cache_builder import build

    _print_summary(build.finalize(cfg, build.shard_summaries(cfg, cfg.num_shards)))
    return 0


def _verify(argv: list[str]) -> int:
    cfg, _ = parse(VerifyConfig, argv)
    setup_logging(cfg.log_level)
    from cache_builder.verify import verify

    given = {a.split("=", 1)[0] for a in argv}
    expected = []
    if given & (SPEC_KEYS - {"image_min_pixels", "image_max_pixels"}):
        expected.append(cfg.video_spec())
    if given & {"family", "image_min_pixels", "image_max_pixels"}:
        expected.append(cfg.image_spec())
    rep = verify(
        cfg.out_dir(),
        video_root=cfg.video_root or None,
        input_path=cfg.input or None,
        expected=expected,
        check_data=cfg.check_data,
        check_sources=cfg.check_sources,
    )
    if cfg.json:
        print(json.dumps(rep.as_dict(), indent=1))
    else:
        for line in rep.problems:
            print(f"PROBLEM {line}")
        for line in rep.notes:
            print(f"note    {line}")
        print(
            f"{'OK' if rep.ok else 'FAILED'}: {rep.checked} entries checked, {len(rep.problems)} problem(s)"
        )
    return 0 if rep.ok else 1


def _stats(argv: list[str]) -> int:
    cfg, _ = parse(StatsConfig, argv)
    from cache_builder.stats import cache_stats, format_stats

    s = cache_stats(cfg.out_dir())
    print(json.dumps(s, indent=1, sort_keys=True) if cfg.json else format_stats(s))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m cache_builder {{{'|'.join(COMMANDS)}}} key=value ...", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        return {"build": _build, "index": _index, "verify": _verify, "stats": _stats}[command](rest)
    except ValueError as e:  # ConfigError and user-input errors (records file, cache folder)
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
