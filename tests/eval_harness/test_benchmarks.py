"""The registry (22 benchmarks + MLVU dev + toy), their annotation files, and snapshots of each one's rendered
prompt.

Snapshots live in tests/eval_harness/snapshots/<benchmark>.txt; after an intended wording change,
regenerate them with VRL_UPDATE_SNAPSHOTS=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eval_harness.benchmarks import benchmark_names, get_benchmark
from eval_harness.records import KEY, load_benchmark
from vrl.rewards import canonical_type

SNAPSHOTS = Path(__file__).parent / "snapshots"
THE_22 = {
    "videomme", "videomme_v2", "mvbench", "tempcompass", "motionbench", "lvbench", "longvideobench", "mlvu",
    "video_holmes", "minerva", "vcrbench", "videoreasonbench", "longvideo_reason", "mmvu", "videommmu",
    "videomathqa", "vsibench", "charades_sta", "stvg", "ovobench", "odvbench", "livesports3k_qa",
}  # fmt: skip
WITHOUT_FILE = {"tempcompass", "odvbench", "videomme_v2"}
WITH_FILE = (THE_22 - WITHOUT_FILE) | {"mlvu_dev"}


def test_registry_has_the_22_benchmarks_mlvu_dev_and_toy():
    assert set(benchmark_names()) == THE_22 | {"mlvu_dev", "toy"}
    assert benchmark_names()[-1] == "toy"
    assert {n for n in benchmark_names() if not get_benchmark(n).has_public_file} == WITHOUT_FILE


@pytest.mark.parametrize(
    "alias, name",
    [("Video-MME", "videomme"), ("charades", "charades_sta"), ("LiveSports-3K QA", "livesports3k_qa"),
     ("VSI-Bench", "vsibench"), ("holmes", "video_holmes"), ("OVO_Bench", "ovobench"), ("Video-MME-v2", "videomme_v2"),
     ("MLVU-dev", "mlvu_dev"), ("mlvu_test", "mlvu")],
)  # fmt: skip
def test_names_match_ignoring_case_and_punctuation(alias, name):
    assert get_benchmark(alias).name == name


def test_unknown_benchmark_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown benchmark 'videommee'") as err:
        get_benchmark("videommee")
    for name in ("videomme", "mvbench", "charades_sta", "toy"):
        assert name in str(err.value)


@pytest.mark.parametrize("name", sorted(WITH_FILE))
def test_real_annotation_file_loads_with_unique_keys(name, real_records):
    records = real_records(name)
    bench = get_benchmark(name)
    assert len({r[KEY] for r in records}) == len(records)
    assert {canonical_type(r["problem_type"]) for r in records} <= set(bench.problem_types)


def test_every_problem_type_of_the_files_is_covered(real_records):
    """OVO-Bench's REC / SSR / CRR and the rest: each record type is one the benchmark scores."""
    types = {canonical_type(r["problem_type"]) for n in WITH_FILE for r in real_records(n)}
    assert {"REC", "SSR", "CRR", "regression", "temporal grounding", "spatial-temporal grounding"} <= types


@pytest.mark.parametrize("name", sorted(WITHOUT_FILE | {"toy"}))
def test_benchmarks_without_public_file_document_a_valid_example(name, tmp_path):
    bench = get_benchmark(name)
    assert bench.example, f"{name} needs an example record (FORMAT.md)"
    path = tmp_path / bench.annotation_file
    path.write_text("[" + __import__("json").dumps(dict(bench.example)) + "]")
    assert len(load_benchmark(bench, path)) == 1


def _snapshot_records(name: str, real_records) -> list[dict]:
    """The first record, and the first of every other problem type (OVO-Bench's REC/SSR/CRR wordings)."""
    bench = get_benchmark(name)
    if not bench.has_public_file or name == "toy":
        return [dict(bench.example)]
    picked: dict[str, dict] = {}
    for record in real_records(name):
        picked.setdefault(canonical_type(record["problem_type"]), record)
    return list(picked.values())


def _rendered(name: str, records: list[dict]) -> str:
    bench = get_benchmark(name)
    parts = []
    for record in records:
        parts.append(f"# {bench.title}: problem_id {record['problem_id']} ({record['problem_type']})")
        for style in ("direct", "think"):
            parts += [f"## {style}", bench.render(dict(record), style)]
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("name", benchmark_names())
def test_rendered_prompt_matches_snapshot(name, real_records):
    text = _rendered(name, _snapshot_records(name, real_records))
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("VRL_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert path.is_file(), f"no snapshot {path}: run with VRL_UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text()


def test_special_wordings_ask_for_what_the_reward_parses(real_records):
    charades = get_benchmark("charades_sta").render(real_records("charades_sta")[0], "direct")
    assert '{"time": [' in charades and "person turn a light on" in charades
    ovo = {r["ovo_task"]: r for r in real_records("ovobench")}
    assert "yes or no" in get_benchmark("ovobench").render(ovo["SSR"], "think")
    assert "whole number" in get_benchmark("ovobench").render(ovo["REC"], "direct")
    math_options = get_benchmark("videomathqa").render(real_records("videomathqa")[0], "direct")
    assert "\nA. " in math_options and "['A." not in math_options  # options given as list text are parsed
