"""``python -m eval_harness score``: results structure, exit codes, partial scoring, bad predictions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, write_jsonl

from eval_harness.cli import main
from vrl.rewards import ground_truth


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eval_harness", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def _records(annotations_dir, name):
    return json.loads((annotations_dir / name).read_text())


def test_score_writes_the_results_structure(annotations_dir, tmp_path):
    records = _records(annotations_dir, "vsibench.json")
    preds = write_jsonl(
        tmp_path / "p.jsonl",
        [{"problem_id": r["problem_id"], "response": r["solution"] if r["problem_type"] == "regression" else "A"}
         for r in records],
    )  # fmt: skip
    out = tmp_path / "out" / "results.json"
    res = _cli(
        "score", "benchmark=vsibench", f"annotations={annotations_dir / 'vsibench.json'}",
        f"predictions={preds}", f"out={out}",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text())
    assert {"benchmark", "num_scored", "num_missing", "overall", "subsets"} <= set(result)
    assert (result["benchmark"], result["num_scored"], result["num_missing"]) == ("vsibench", 5130, 0)
    for task in ("object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation"):
        assert result["subsets"][task] == 100.0
    assert 0 < result["overall"] < 100
    assert "VSI-Bench: overall" in res.stdout


def test_missing_predictions_exit_nonzero_unless_allow_partial(annotations_dir, tmp_path):
    records = _records(annotations_dir, "mlvu.json")
    preds = write_jsonl(
        tmp_path / "p.jsonl",
        [{"problem_id": r["problem_id"], "response": r["solution"]} for r in records[:50]],
    )
    args = ["score", "benchmark=mlvu", f"annotations={annotations_dir / 'mlvu.json'}", f"predictions={preds}"]
    out = tmp_path / "r.json"
    res = _cli(*args, f"out={out}")
    assert res.returncode == 1 and "452 of 502 records have no prediction" in res.stderr
    assert not out.exists()
    res = _cli(*args, f"out={out}", "allow_partial=true")
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text())
    assert (result["num_scored"], result["num_missing"], result["overall"]) == (50, 452, 100.0)


def test_charades_subsets(annotations_dir, tmp_path):
    records = _records(annotations_dir, "charades_sta.json")
    preds = write_jsonl(
        tmp_path / "p.jsonl",
        [{"problem_id": r["problem_id"], "response": f"<answer>{ground_truth(r)}</answer>"} for r in records],
    )
    out = tmp_path / "r.json"
    assert main(["score", "benchmark=charades", f"annotations={annotations_dir / 'charades_sta.json'}",
                 f"predictions={preds}", f"out={out}"]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["subsets"] == {"mIoU": 100.0, "R@0.3": 100.0, "R@0.5": 100.0, "R@0.7": 100.0}
    assert result["overall"] == 100.0


def test_unknown_problem_ids_are_an_error(annotations_dir, tmp_path, capsys):
    preds = write_jsonl(
        tmp_path / "p.jsonl",
        [{"problem_id": "no-such-id", "response": "A"}, {"problem_id": 1, "response": "B"}],
    )
    code = main(["score", "benchmark=mlvu", f"annotations={annotations_dir / 'mlvu.json'}", f"predictions={preds}",
                 "allow_partial=true"])  # fmt: skip
    assert code == 1
    assert "unknown problem_id(s): no-such-id" in capsys.readouterr().err


def test_unknown_benchmark_and_missing_keys_are_usage_errors(annotations_dir, tmp_path, capsys):
    assert main(["score", "benchmark=nope", "annotations=a", "predictions=b"]) == 2
    assert "Known benchmarks: videomme" in capsys.readouterr().err
    assert main(["score", "benchmark=mlvu"]) == 2
    assert "annotations=..." in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_shared_problem_ids_take_predictions_in_file_order(annotations_dir, tmp_path):
    """LiveSports-3K repeats a few problem_ids: lines giving only that id go to those records in order."""
    records = _records(annotations_dir, "livesports3k_qa.json")
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"problem_id": r["problem_id"], "response": r["solution"]} for r in records]
    )
    out = tmp_path / "r.json"
    assert main(["score", "benchmark=livesports3k_qa", f"annotations={annotations_dir / 'livesports3k_qa.json'}",
                 f"predictions={preds}", f"out={out}"]) == 0  # fmt: skip
    assert json.loads(out.read_text())["overall"] == 100.0


def test_list_names_every_benchmark(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 24 and "FORMAT.md" in out  # 22 benchmarks, MLVU dev, toy


@pytest.mark.parametrize("bad", ["duplicate", "no_id"])
def test_malformed_prediction_files(annotations_dir, tmp_path, bad, capsys):
    rows = (
        [{"problem_id": 1, "response": "A"}, {"problem_id": 1, "response": "B"}]
        if bad == "duplicate"
        else [{"response": "A"}]
    )
    preds = write_jsonl(tmp_path / "p.jsonl", rows)
    assert main(["score", "benchmark=mlvu", f"annotations={annotations_dir / 'mlvu.json'}", f"predictions={preds}",
                 "allow_partial=true"]) == 1  # fmt: skip
    assert (
        "more than one prediction" if bad == "duplicate" else "no 'problem_id'"
    ) in capsys.readouterr().err
