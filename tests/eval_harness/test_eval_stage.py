"""The eval stage end to end on the toy suite with the tiny model (plan → tasks → finalize, in process):
sharded equals single-process, reruns skip finished samples with any num_shards, missing videos are
recorded per sample, missing predictions are refused unless allow_partial, settings are guarded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval_harness import aggregate_stage, stage
from eval_harness.config import AggregateConfig, Config
from eval_harness.predictions import prediction_file, read_lines
from eval_harness.results import IncompleteRun
from vrl.config import ConfigError, parse, save
from vrl.launch.context import RunContext
from vrl.toy import ToyConfig, ensure_toy_suite

NUM = 8


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "suite"
    return ensure_toy_suite(ToyConfig(num_train=0, num_val=NUM, seed=5, coverage_every=0, out=str(out)))


def _cfg(tmp_path, suite, name, *extra):
    args = [
        f"run_root={tmp_path / 'runs'}", f"name={name}", f"toy.out={suite}", "toy.num_train=0",
        f"toy.num_val={NUM}", "toy.seed=5", "toy.coverage_every=0", "max_new_tokens=4", "batch_size=1",
        "progress=false", *extra,
    ]  # fmt: skip
    return parse(Config, args)[0]


def _run(cfg) -> dict:
    """What the launcher does: save the config, plan, run every task, finalize."""
    run_dir = _start(cfg)
    tasks = stage.plan(cfg)
    for i, task in enumerate(tasks):
        stage.run_task(cfg, task, RunContext(run_dir, task_index=i, num_tasks=len(tasks)))
    stage.finalize(cfg, RunContext(run_dir))
    return {"tasks": tasks, "dir": run_dir}


def _start(cfg) -> Path:
    run_dir = Path(cfg.run_root).resolve() / "eval" / cfg.name
    save(cfg, run_dir / "config.yaml")
    return run_dir


def _answers(run_dir: Path) -> dict[str, str]:
    return {line["key"]: line["response"] for line in read_lines(prediction_file(run_dir, "toy"))}


def _results(run_dir: Path) -> dict:
    entry = json.loads((run_dir / "results.json").read_text())["toy"]
    return {k: entry[k] for k in ("overall", "subsets", "counts", "num_scored", "num_missing")}


def test_sharded_run_equals_single_process_and_resumes(tmp_path, suite):
    single = _run(_cfg(tmp_path, suite, "single", "num_shards=1"))
    sharded = _run(_cfg(tmp_path, suite, "sharded", "num_shards=3"))
    assert len(sharded["tasks"]) == 3
    assert sorted(s[1] for t in sharded["tasks"] for s in t["samples"]) == sorted(_answers(single["dir"]))
    assert _answers(sharded["dir"]) == _answers(single["dir"])
    assert _results(sharded["dir"]) == _results(single["dir"])
    for name in ("report.md", "scores.png", "results/toy.json"):
        assert (sharded["dir"] / name).is_file()
    line = read_lines(prediction_file(sharded["dir"], "toy"))[0]
    assert line["settings"]["video_spec"]["fps"] == 2.0 and line["settings"]["max_new_tokens"] == 4

    # a rerun with another num_shards has nothing to do
    assert stage.plan(_cfg(tmp_path, suite, "sharded", "num_shards=2")) == []

    # lose three predictions (a killed task): a rerun with 2 shards runs exactly those
    path = prediction_file(sharded["dir"], "toy")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[3:]))
    again = _run(_cfg(tmp_path, suite, "sharded", "num_shards=2"))
    assert sorted(s[1] for t in again["tasks"] for s in t["samples"]) == sorted(
        json.loads(x)["key"] for x in lines[:3]
    )
    assert _answers(again["dir"]) == _answers(single["dir"])
    assert _results(again["dir"]) == _results(single["dir"])


def test_missing_video_is_recorded_and_counted(tmp_path, suite):
    broken = tmp_path / "suite"
    shutil.copytree(suite, broken)
    first = json.loads((broken / "val.jsonl").read_text().splitlines()[0])
    (broken / first["path"]).unlink()
    cfg = _cfg(tmp_path, broken, "broken")
    out = _run(cfg)
    lines = {x["key"]: x for x in read_lines(prediction_file(out["dir"], "toy"))}
    assert lines[first["problem_id"]]["error"]["reason"] == "media_missing"
    assert lines[first["problem_id"]]["response"] is None
    entry = json.loads((out["dir"] / "results.json").read_text())["toy"]
    assert entry["num_errors"] == 1 and entry["errors"] == {"media_missing": 1} and entry["num_scored"] == NUM
    assert "1 samples could not run" in (out["dir"] / "report.md").read_text()


def test_finalize_refuses_missing_samples_unless_partial(tmp_path, suite):
    cfg = _cfg(tmp_path, suite, "partial", "num_shards=2")
    run_dir = _start(cfg)
    tasks = stage.plan(cfg)
    stage.run_task(cfg, tasks[0], RunContext(run_dir))
    with pytest.raises(IncompleteRun, match=r"toy: \d of 8"):
        stage.finalize(cfg, RunContext(run_dir))
    assert (run_dir / "missing.json").is_file()
    agg, _ = parse(AggregateConfig, [f"run_root={cfg.run_root}", "eval_run=partial", "allow_partial=true"])
    agg_dir = Path(cfg.run_root) / "aggregate" / "x"
    summary = aggregate_stage.run(agg, RunContext(agg_dir))
    assert (agg_dir / "report.md").is_file() and (agg_dir / "results" / "toy.json").is_file()
    done = len(tasks[0]["samples"])
    assert summary["num_missing"] == NUM - done
    entry = json.loads((run_dir / "results.json").read_text())["toy"]
    assert (entry["num_scored"], entry["num_missing"]) == (done, NUM - done)


def test_reusing_a_name_with_other_settings_is_refused(tmp_path, suite):
    _run(_cfg(tmp_path, suite, "same", "max_samples=2"))
    with pytest.raises(ConfigError, match=r"other inference settings.*max_new_tokens: 4 -> 5"):
        stage.plan(_cfg(tmp_path, suite, "same", "max_samples=2", "max_new_tokens=5"))


def test_config_errors():
    with pytest.raises(ConfigError, match=r"Unknown benchmark 'nope'\. Known benchmarks: videomme"):
        parse(Config, ["benchmarks=[nope]"])
    with pytest.raises(ConfigError, match="set annotations_dir="):
        parse(Config, ["benchmarks=[videomme]"])
    cfg, _ = parse(Config, ["benchmarks=[Video-MME,charades]", "annotations_dir=/x", "style=think"])
    assert cfg.benchmarks == ["videomme", "charades_sta"] and cfg.inference.new_tokens() == 2048


def test_frames_from_a_cache_built_with_the_eval_spec(tmp_path, suite):
    from cache_builder.build import build_local
    from cache_builder.config import CacheConfig
    from cache_builder.spec import SpecMismatchError

    decoded = _run(_cfg(tmp_path, suite, "decoded", "max_samples=3"))
    base = _cfg(tmp_path, suite, "x")
    v, img = base.video, base.image
    cache = tmp_path / "cache"
    build_local(
        CacheConfig(
            input=str(suite / "val.jsonl"), video_root=str(suite), out=str(cache), family="qwen2_5_vl",
            fps=v.fps, min_frames=v.min_frames, max_frames=v.max_frames, min_pixels=v.min_pixels,
            max_pixels=v.max_pixels, total_pixels=v.total_pixels, image_min_pixels=img.min_pixels,
            image_max_pixels=img.max_pixels, progress=False,
        )
    )  # fmt: skip
    from_cache = [f"cache_dir=[{cache}]", "video_source=cache", "max_samples=3"]
    cached = _run(_cfg(tmp_path, suite, "cached", *from_cache))
    assert _answers(cached["dir"]) == _answers(decoded["dir"])
    with pytest.raises(SpecMismatchError, match="fps"):
        _run(_cfg(tmp_path, suite, "other", *from_cache, "video.fps=1.0"))
