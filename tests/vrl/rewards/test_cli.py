"""python -m vrl.rewards score INPUT.jsonl [OUTPUT.jsonl] key=value ..."""

import json
import subprocess
import sys

import pytest

from vrl.rewards.cli import main

LINES = [
    {
        "problem_type": "multiple choice",
        "response": "<answer>B</answer>",
        "solution": "<answer>B</answer>",
        "options": ["A. x", "B. y"],
        "id": 1,
    },
    {"problem_type": "numerical", "response": "<answer>45%</answer>", "solution": "<answer>45</answer>"},
    {"problem_type": "not a type", "response": "x", "solution": "y"},
    {"problem_type": "boolean", "response": "<answer>yes</answer>", "solution": "<answer>no</answer>"},
]


def write_jsonl(path, records, extra_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "".join(extra_lines))
    return path


def test_scores_every_line_and_marks_errors(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", LINES, ["\n", "{broken\n"])
    dst = tmp_path / "out.jsonl"
    assert main(["score", str(src), str(dst)]) == 1
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert len(out) == 5
    assert out[0] == {**LINES[0], "overall": 1.0, "format": 1.0, "accuracy": 1.0}
    assert out[1]["accuracy"] == 1.0
    assert "Known types" in out[2]["error"] and "multiple choice" in out[2]["error"]
    assert out[3]["accuracy"] == 0.0 and out[3]["format"] == 1.0
    assert out[4] == {"line": 6, "error": out[4]["error"]} and "not valid JSON" in out[4]["error"]
    assert "scored 3 lines, 2 errors" in capsys.readouterr().err


def test_all_good_exits_zero_and_writes_stdout(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [LINES[0], LINES[1]])
    assert main(["score", str(src)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["overall"] for line in lines] == [1.0, 1.0]


def test_weights_from_the_command_line(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [LINES[3]])
    assert main(["score", str(src), "accuracy_weight=0.8", "format_weight=0.2"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"] == pytest.approx(0.2)
    assert main(["score", str(src), "accuracy_weight=0.6"]) == 0  # the other weight follows
    assert json.loads(capsys.readouterr().out)["overall"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    "args",
    [
        ["score"],
        ["frobnicate", "x"],
        ["score", "missing.jsonl"],
        ["score", "IN", "bogus_key=1"],
        ["score", "IN", "accuracy_weight=0.7", "format_weight=0.1"],
    ],
)
def test_usage_and_config_errors_exit_two(tmp_path, args, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [LINES[0]])
    args = [str(src) if a == "IN" else a for a in args]
    assert main(args) == 2
    assert capsys.readouterr().err


def test_module_entry_point(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [LINES[1]])
    proc = subprocess.run(
        [sys.executable, "-m", "vrl.rewards", "score", str(src)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accuracy"] == 1.0
