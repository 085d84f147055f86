"""Every stage fails in one screen on bad input (issue 13, item 6).

One row per bad input and stage it applies to. Each must end with a non-zero status and a message naming
the file, record or key, without a traceback, and without writing what would block the corrected rerun.
Most rows call the CLI entry in this process (the same ``main`` as ``jobs/submit.py``, with its output
captured); a few go through the real ``jobs/submit.py`` subprocess, one of them through a local job, so
the path of an error raised inside a job is covered as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from vrl_fixtures import run_command

from vrl.launch import cli

ROOT = Path(__file__).resolve().parents[3]

GOOD = {
    "problem_id": "p0",
    "problem": "What color is the box?",
    "problem_type": "multiple choice",
    "options": ["A. red", "B. blue"],
    "solution": "<answer>A</answer>",
    "path": "v0.mp4",
    "data_type": "video",
}
#: an MVBench record (the benchmark's official fields)
MVBENCH = {
    "problem_id": 1,
    "problem": "What is the action performed by the person in the video?",
    "options": ["A. Not sure", "B. Scattering something down", "C. Piling something up"],
    "data_type": "video",
    "problem_type": "multiple choice",
    "solution": "<answer>C</answer>",
    "path": "./ssv2_video/166583.mp4",
}


def _without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def t(tmp_path: Path) -> Path:
    """The files the rows name, under ``tmp_path``."""
    _jsonl(tmp_path / "good.jsonl", [GOOD])
    (tmp_path / "bad.jsonl").write_text('{"problem_id": "p0", "problem": \n')
    (tmp_path / "bad.json").write_text('[{"problem_id": "p0",]')
    _jsonl(tmp_path / "no_type.jsonl", [GOOD, _without(GOOD, "problem_type")])
    _jsonl(tmp_path / "no_solution.jsonl", [_without(GOOD, "solution")])
    _jsonl(tmp_path / "no_path.jsonl", [_without(GOOD, "path")])
    _jsonl(tmp_path / "int_path.jsonl", [{**GOOD, "path": 7}])
    _jsonl(tmp_path / "list_of_numbers.jsonl", [{**GOOD, "videos": [1, 2]}])
    (tmp_path / "not_records.json").write_text('{"a": 1}')
    model = tmp_path / "broken_model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2_5_vl", ')
    other = tmp_path / "llama_model"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "not_a_cache").mkdir()
    (tmp_path / "not_a_cache" / "notes.txt").write_text("hello\n")
    ann = tmp_path / "ann"
    for name, rows in {
        "good": [MVBENCH],
        "no_type": [_without(MVBENCH, "problem_type")],
        "no_solution": [_without(MVBENCH, "solution")],
        "no_path": [_without(MVBENCH, "path")],
        "int_path": [{**MVBENCH, "path": 7}],
    }.items():
        (ann / name).mkdir(parents=True)
        (ann / name / "mvbench.json").write_text(json.dumps(rows))
    (ann / "bad").mkdir()
    (ann / "bad" / "mvbench.json").write_text("[{")
    (ann / "none").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "videos").mkdir()
    return tmp_path


TRAIN = ("stage=train", "preset=none")
EVAL = ("stage=eval", "benchmarks=[mvbench]", "annotations_dir={t}/ann/good", "video_root={t}/videos")
CACHE = ("stage=cache", "input={t}/good.jsonl", "out={t}/cache_out", "video_root={t}")
AGG = ("stage=aggregate",)
TOY = ("stage=toy", "out={t}/toy_out", "num_train=4", "num_val=2")
SMOKE = ("stage=smoke", "steps=1", "step_seconds=0")

# (id, base args, bad args, what the message must name)
CASES = [
    # ---- train ----
    ("train-missing-file", TRAIN, ["data.train_files=[{t}/nope.jsonl]"], ["nope.jsonl", "not found"]),
    ("train-malformed-jsonl", TRAIN, ["data.train_files=[{t}/bad.jsonl]"], ["bad.jsonl:1"]),
    ("train-malformed-json", TRAIN, ["data.train_files=[{t}/bad.json]"], ["bad.json"]),
    ("train-not-records", TRAIN, ["data.train_files=[{t}/not_records.json]"], ["not_records.json"]),
    ("train-val-missing", TRAIN, ["data.train_files=[{t}/good.jsonl]", "data.val_files=[{t}/v.jsonl]"],
     ["v.jsonl", "not found"]),
    ("train-no-problem-type", TRAIN, ["data.train_files=[{t}/no_type.jsonl]"],
     ["no_type.jsonl", "record 1", "problem_type"]),
    ("train-no-solution", TRAIN, ["data.train_files=[{t}/no_solution.jsonl]"],
     ["no_solution.jsonl", "record 0", "solution"]),
    ("train-no-path", TRAIN, ["data.train_files=[{t}/no_path.jsonl]"], ["no_path.jsonl", "record 0", "path"]),
    ("train-int-path", TRAIN, ["data.train_files=[{t}/int_path.jsonl]"], ["int_path.jsonl", "record 0", "path"]),
    ("train-number-videos", TRAIN, ["data.train_files=[{t}/list_of_numbers.jsonl]"],
     ["list_of_numbers.jsonl", "record 0", "videos"]),
    ("train-filtered-empty", TRAIN, ["data.train_files=[{t}/good.jsonl]", "data.problem_types=[numerical]"],
     ["good.jsonl", "data.problem_types"]),
    ("train-broken-model-config", TRAIN, ["model={t}/broken_model", "data.train_files=[{t}/good.jsonl]"],
     ["broken_model/config.json"]),
    ("train-unsupported-model", TRAIN, ["model={t}/llama_model", "data.train_files=[{t}/good.jsonl]"],
     ["llama_model", "llama"]),
    ("train-missing-model", TRAIN, ["model={t}/no_model", "data.train_files=[{t}/good.jsonl]"], ["no_model"]),
    ("train-run-root-file", TRAIN, ["run_root={t}/a_file", "data.train_files=[{t}/good.jsonl]"],
     ["run_root", "a_file"]),
    ("train-lr-nan", TRAIN, ["engine.lr=nan"], ["engine.lr", "nan"]),
    ("train-lr-inf", TRAIN, ["engine.lr=inf"], ["engine.lr"]),
    ("train-temperature-nan", TRAIN, ["rollout.temperature=nan"], ["rollout.temperature"]),
    ("train-negative-fps", TRAIN, ["data.video.fps=-1"], ["data.video.fps"]),
    ("train-zero-fps", TRAIN, ["data.video.fps=0"], ["data.video.fps"]),
    ("train-min-over-max-pixels", TRAIN, ["data.video.min_pixels=9999999"],
     ["data.video.min_pixels", "data.video.max_pixels"]),
    ("train-image-min-over-max", TRAIN, ["data.image.min_pixels=9999999"],
     ["data.image.min_pixels", "data.image.max_pixels"]),
    ("train-min-over-max-frames", TRAIN, ["data.video.min_frames=64", "data.video.max_frames=8"],
     ["data.video.min_frames", "data.video.max_frames"]),
    ("train-ppo-epochs-0", TRAIN, ["trainer.ppo_epochs=0"], ["trainer.ppo_epochs"]),
    ("train-absurd-steps", TRAIN, ["trainer.total_steps=1000000000000"], ["trainer.total_steps"]),
    ("train-negative-steps", TRAIN, ["trainer.total_steps=-3"], ["trainer.total_steps"]),
    ("train-negative-save-every", TRAIN, ["trainer.save_every=-1"], ["trainer.save_every"]),
    ("train-negative-val-every", TRAIN, ["trainer.val_every=-1"], ["trainer.val_every"]),
    ("train-negative-warmup", TRAIN, ["engine.warmup_steps=-1"], ["engine.warmup_steps"]),
    ("train-negative-sft-steps", TRAIN, ["warmup.sft_steps=-1"], ["warmup.sft_steps"]),
    ("train-cache-is-a-file", TRAIN, ["data.train_files=[{t}/good.jsonl]", "cache_dir=[{t}/a_file]"],
     ["data.cache_dir", "a_file"]),
    ("train-not-a-cache", TRAIN,
     ["data.train_files=[{t}/good.jsonl]", "cache_dir=[{t}/not_a_cache]", "video_source=cache"],
     ["data.cache_dir", "not_a_cache"]),
    ("train-missing-cache", TRAIN,
     ["data.train_files=[{t}/good.jsonl]", "cache_dir=[{t}/no_cache]", "video_source=cache"],
     ["data.cache_dir", "no_cache"]),
    ("train-media-root-missing", TRAIN, ["data.train_files=[{t}/good.jsonl]", "data.media_root={t}/nowhere"],
     ["data.media_root", "nowhere"]),
    # ---- cache ----
    ("cache-missing-input", CACHE, ["input={t}/nope.jsonl"], ["nope.jsonl", "not found"]),
    ("cache-no-input", CACHE, ["input="], ["input"]),
    ("cache-malformed-input", CACHE, ["input={t}/bad.jsonl"], ["bad.jsonl:1"]),
    ("cache-not-records", CACHE, ["input={t}/not_records.json"], ["not_records.json"]),
    ("cache-no-path", CACHE, ["input={t}/no_path.jsonl"], ["no_path.jsonl", "record 0", "path"]),
    ("cache-int-path", CACHE, ["input={t}/int_path.jsonl"], ["int_path.jsonl", "record 0", "path"]),
    ("cache-number-videos", CACHE, ["input={t}/list_of_numbers.jsonl"], ["list_of_numbers.jsonl", "videos"]),
    ("cache-out-is-a-file", CACHE, ["out={t}/a_file"], ["out", "a_file"]),
    ("cache-video-root-missing", CACHE, ["video_root={t}/nowhere"], ["video_root", "nowhere"]),
    ("cache-run-root-file", CACHE, ["run_root={t}/a_file"], ["run_root", "a_file"]),
    ("cache-negative-fps", CACHE, ["fps=-1"], ["fps"]),
    ("cache-fps-nan", CACHE, ["fps=nan"], ["fps"]),
    ("cache-min-over-max-pixels", CACHE, ["min_pixels=9999999", "max_pixels=1000"], ["max_pixels", "min_pixels"]),
    ("cache-absurd-shards", CACHE, ["num_shards=100000000"], ["num_shards"]),
    # ---- eval ----
    ("eval-missing-file", EVAL, ["annotations_dir={t}/ann/none"], ["mvbench.json", "not found"]),
    ("eval-malformed-file", EVAL, ["annotations_dir={t}/ann/bad"], ["mvbench.json"]),
    ("eval-no-problem-type", EVAL, ["annotations_dir={t}/ann/no_type"], ["mvbench.json", "record 0", "problem_type"]),
    ("eval-no-solution", EVAL, ["annotations_dir={t}/ann/no_solution"], ["mvbench.json", "record 0", "solution"]),
    ("eval-no-path", EVAL, ["annotations_dir={t}/ann/no_path"], ["mvbench.json", "record 0", "path"]),
    ("eval-int-path", EVAL, ["annotations_dir={t}/ann/int_path"], ["mvbench.json", "record 0", "path"]),
    ("eval-broken-model-config", EVAL, ["model={t}/broken_model"], ["broken_model/config.json"]),
    ("eval-missing-model", EVAL, ["model={t}/no_model"], ["no_model"]),
    ("eval-run-root-file", EVAL, ["run_root={t}/a_file"], ["run_root", "a_file"]),
    ("eval-negative-fps", EVAL, ["video.fps=-2"], ["video.fps"]),
    ("eval-min-over-max-pixels", EVAL, ["video.min_pixels=9999999"], ["video.min_pixels", "video.max_pixels"]),
    ("eval-temperature-nan", EVAL, ["inference.temperature=nan"], ["inference.temperature"]),
    ("eval-absurd-shards", EVAL, ["num_shards=100000000"], ["num_shards"]),
    # ---- aggregate ----
    ("aggregate-no-such-run", AGG, ["eval_run={t}/runs/eval/nope"], ["runs/eval/nope"]),
    ("aggregate-no-such-name", AGG, ["name=nope", "run_root={t}/runs"], ["nope", "eval_run"]),
    ("aggregate-run-root-file", AGG, ["eval_run={t}/runs/eval/nope", "run_root={t}/a_file"], ["run_root"]),
    # ---- toy ----
    ("toy-out-is-a-file", TOY, ["out={t}/a_file"], ["out", "a_file"]),
    ("toy-run-root-file", TOY, ["run_root={t}/a_file"], ["run_root", "a_file"]),
    ("toy-negative-count", TOY, ["num_train=-1"], ["num_train"]),
    ("toy-fps-nan", TOY, ["fps_choices=[nan]"], ["fps_choices"]),
    # ---- smoke ----
    ("smoke-negative-steps", SMOKE, ["steps=-1"], ["steps"]),
    ("smoke-absurd-steps", SMOKE, ["steps=1000000000000"], ["steps"]),
    ("smoke-seconds-nan", SMOKE, ["step_seconds=nan"], ["step_seconds"]),
    ("smoke-run-root-file", SMOKE, ["run_root={t}/a_file"], ["run_root", "a_file"]),
]  # fmt: skip

if os.geteuid() != 0:  # root writes into a read-only folder: this row needs an ordinary user
    CASES.append(("smoke-run-root-read-only", SMOKE, ["run_root={t}/ro/runs"], ["run_root", "ro"]))


def _args(t: Path, base: tuple[str, ...], bad: list[str]) -> list[str]:
    """Base args, this row's bad ones (later keys win), a run folder under ``t``, in-process executor."""
    args = [a.format(t=t) for a in (*base, *bad)]
    keys = {a.split("=", 1)[0] for a in args}
    if "run_root" not in keys:
        args.append(f"run_root={t}/runs")
    if "name" not in keys:
        args.append("name=r")
    return [*args, "cluster=debug"]


def _run_dir(args: list[str]) -> Path:
    kv = dict(a.split("=", 1) for a in args)
    return Path(kv["run_root"]) / kv["stage"] / kv["name"]


def run_main(args: list[str], capsys) -> tuple[int, str]:
    """The CLI in this process: (status, stdout + stderr). A traceback escaping ``main`` fails the test."""
    rc = cli.main(args)
    out = capsys.readouterr()
    return rc, out.out + out.err


def assert_one_screen(rc: int, text: str, names: list[str]) -> None:
    assert rc != 0, text
    assert "Traceback" not in text, text
    for name in names:
        assert name in text, f"{name!r} not named in:\n{text}"
    assert len(text.splitlines()) < 30, text


@pytest.mark.parametrize(("base", "bad", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_in_one_screen(t, capsys, monkeypatch, base, bad, names):
    monkeypatch.chdir(t)
    if any("/ro/" in a for a in bad):
        (t / "ro").mkdir(mode=0o555)
    args = _args(t, base, bad)
    rc, text = run_main(args, capsys)
    assert_one_screen(rc, text, names)
    assert rc == 2, text
    # nothing half-written: no run folder for a check made before submission, no recorded settings
    run_dir = _run_dir(args)
    assert not (run_dir / "predictions" / "settings.json").exists()
    if "stage=eval" not in args and "stage=cache" not in args:
        assert not run_dir.exists(), sorted(run_dir.rglob("*"))
    if "stage=cache" in args:
        assert not (t / "cache_out").exists()


# ---- through the real jobs/submit.py ---------------------------------------------------------------------


def submit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_command([sys.executable, str(ROOT / "jobs" / "submit.py"), *args], cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("stage=train", "data.train_files=[{t}/nope.jsonl]", "cluster=debug"), ["nope.jsonl"]),
        (("stage=cache", "input={t}/int_path.jsonl", "out={t}/c"), ["int_path.jsonl", "record 0", "path"]),
        (("stage=aggregate", "eval_run={t}/runs/eval/nope"), ["runs/eval/nope"]),
        (("stage=smoke", "steps=-1"), ["steps"]),
    ],
    ids=["train-missing-file", "cache-int-path", "aggregate-no-such-run", "smoke-negative-steps"],
)
def test_submit_script_fails_in_one_screen(t, args, names):
    out = submit(*(a.format(t=t) for a in args), f"run_root={t}/runs", cwd=t)
    assert out.returncode == 2, out.stdout + out.stderr
    assert_one_screen(out.returncode, out.stdout + out.stderr, names)


def _eval_run(t: Path, name: str) -> Path:
    """A run folder as stage=eval leaves it (config.yaml) without any prediction."""
    from eval_harness.config import Config
    from vrl.config import parse, save

    cfg = parse(Config, ["benchmarks=[mvbench]", f"annotations_dir={t}/ann/good", f"run_root={t}/runs"])[0]
    run_dir = t / "runs" / "eval" / name
    save(cfg, run_dir / "config.yaml")
    return run_dir


def test_error_inside_a_local_job_is_one_screen(t):
    """A user error raised inside the job (no predictions to aggregate): status 2, the message and the
    job's log file, no traceback, though the job ran in another process."""
    run_dir = _eval_run(t, "empty")
    out = submit("stage=aggregate", f"eval_run={run_dir}", f"run_root={t}/runs", "name=agg", cwd=t)
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    assert "Traceback" not in text, text
    assert "samples without predictions" in text and "allow_partial" in text
    assert "_log.err" in text  # where the job's full log is
    assert "aggregate: FAILED" in text


def test_a_bug_inside_a_job_keeps_its_traceback(t):
    """Only user errors are shortened: any other exception is a bug, shown with its traceback."""
    out = submit("stage=smoke", "steps=2", "step_seconds=0", "fail_at_step=1", f"run_root={t}/runs", cwd=t)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" in out.stderr and "RuntimeError: smoke: failing at step 1" in out.stderr


def test_a_message_older_than_the_job_is_not_its_own(tmp_path):
    """A local job id is a process id: a message left by an earlier job of the same id is ignored."""
    from vrl.launch.failure import job_message

    folder = tmp_path / "123"
    folder.mkdir()
    message = folder / "123_0_user_error.txt"
    message.write_text("error: old\n")
    pickle = folder / "123_submitted.pkl"
    pickle.write_bytes(b"")
    os.utime(message, (1, 1))  # written long before this submission
    paths = SimpleNamespace(folder=folder, submitted_pickle=pickle)
    job = SimpleNamespace(job_id="123", paths=paths)
    assert job_message(job) is None
    message.write_text("error: new\n")
    assert job_message(job) == ("error: new", folder / "123_0_log.err")


def test_error_inside_a_debug_job_is_one_screen(t, capsys, monkeypatch):
    monkeypatch.chdir(t)
    run_dir = _eval_run(t, "empty")
    rc, text = run_main(
        ["stage=aggregate", f"eval_run={run_dir}", f"run_root={t}/runs", "cluster=debug"], capsys
    )
    assert_one_screen(rc, text, ["samples without predictions", "allow_partial"])
    assert rc == 2


# ---- the corrected rerun is not blocked -----------------------------------------------------------------


def test_failed_eval_planning_does_not_block_the_corrected_rerun(t, capsys, monkeypatch):
    """Planning fails on a bad annotation file; the rerun, with the file fixed and another setting, runs
    (a settings.json written by the failed planning would refuse it)."""
    monkeypatch.chdir(t)
    base = ["stage=eval", "benchmarks=[mvbench]", f"video_root={t}/videos", "name=e", f"run_root={t}/runs",
            "cluster=debug", "progress=false", "batch_size=1"]  # fmt: skip
    rc, text = run_main([*base, f"annotations_dir={t}/ann/no_type", "max_new_tokens=3"], capsys)
    assert_one_screen(rc, text, ["mvbench.json", "problem_type"])
    assert not (t / "runs" / "eval" / "e" / "predictions" / "settings.json").exists()
    # fixed: the one sample's video is missing, so it is recorded as an error, and aggregation reports it
    rc, text = run_main([*base, f"annotations_dir={t}/ann/good", "max_new_tokens=4"], capsys)
    assert rc == 0, text
    settings = json.loads((t / "runs" / "eval" / "e" / "predictions" / "settings.json").read_text())
    assert settings["max_new_tokens"] == 4


# ---- training stops with an error when a step has no trajectories -----------------------------------------


def _train_args(t: Path, *extra: str) -> list[str]:
    return [
        "stage=train", "preset=none", f"data.train_files=[{t}/good.jsonl]", f"run_root={t}/runs", "name=tr",
        "cluster=debug", "trainer.total_steps=2", "trainer.rollout_batch_size=2", "rollout.n=2",
        "rollout.max_response_length=4", "trainer.val_before=false", "trainer.export_final=false",
        "trainer.metrics=[jsonl]", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (("video_source=decode",), ["no trajectories", "data.media_root", "missing"]),
        (("video_source=cache", "cache_dir=[{t}/empty_cache]"), ["no trajectories", "data.cache_dir"]),
    ],
    ids=["every-video-missing", "empty-cache"],
)
def test_training_without_trajectories_stops_with_an_error(t, capsys, monkeypatch, extra, names):
    monkeypatch.chdir(t)
    from cache_builder.index import build_index

    (t / "empty_cache").mkdir()
    build_index(t / "empty_cache")  # a valid cache with no entry
    rc, text = run_main(_train_args(t, *(e.format(t=t) for e in extra)), capsys)
    assert rc == 2, text
    assert "Traceback" not in text, text
    for name in names:
        assert name in text, text
    assert "train: done" not in text
    assert not (t / "runs" / "train" / "tr" / "summary.json").exists()
    if "video_source=decode" in extra:
        # what the failed run left does not refuse the corrected command (same name, other settings)
        rc, text = run_main(_train_args(t, "video_source=decode", "trainer.total_steps=0"), capsys)
        assert rc == 0, text
        assert (t / "runs" / "train" / "tr" / "summary.json").is_file()
