"""The bootstrap is quiet: one line per step, the commands' output in a log whose tail a failure shows.

Runs the step runner with small fake commands (Python one-liners) instead of apt-get and pip, and the
environment stamp on copies of the lock and pyproject: nothing here touches the real ``.venv``.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def boot():
    spec = importlib.util.spec_from_file_location("vrl_jobs_bootstrap", ROOT / "jobs" / "_bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_successful_step_prints_one_line_and_logs_everything(boot, tmp_path):
    out = io.StringIO()
    steps = boot.Steps(tmp_path / "boot.log", stream=out)
    with steps.step("packages", "3 pinned"):
        steps.run(
            py(
                "import sys\nfor i in range(50): print('Collecting pkg', i)\nprint('a warning', file=sys.stderr)"
            )
        )
    with steps.step("project", "vrl (editable)"):
        steps.run(py("print('Successfully installed vrl')"))
    steps.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"[bootstrap] preparing the environment; full output in {tmp_path / 'boot.log'}"
    assert re.fullmatch(r"\[bootstrap\] packages: 3 pinned \.\.\. \d+\.\d s", lines[1])
    assert re.fullmatch(r"\[bootstrap\] project: vrl \(editable\) \.\.\. \d+\.\d s", lines[2])
    assert len(lines) == 3  # none of the commands' output reaches the terminal
    log = (tmp_path / "boot.log").read_text()
    assert "Collecting pkg 49" in log and "a warning" in log and "Successfully installed vrl" in log
    assert f"$ {sys.executable} -c" in log  # each command is logged before its output


def test_a_failing_step_exits_with_the_log_path_and_its_last_lines(boot, tmp_path):
    out = io.StringIO()
    steps = boot.Steps(tmp_path / "boot.log", stream=out, tail_lines=5)
    with steps.step("venv", ".venv"):
        steps.run(py("print('output of an earlier step')"))
    with pytest.raises(SystemExit) as exc, steps.step("apt", "ffmpeg"):
        steps.run(py("import sys\nfor i in range(40): print('line', i)\nsys.exit(3)"))
    message = str(exc.value.code)
    assert "[bootstrap] apt failed: " in message and "exited with status 3" in message
    assert f"full output: {tmp_path / 'boot.log'}" in message
    assert "    line 39" in message and "    line 36" in message
    assert "line 30" not in message and "earlier step" not in message  # the failed step's tail only
    assert re.search(r"\[bootstrap\] apt: ffmpeg \.\.\. failed after \d+\.\d s\n$", out.getvalue())
    assert "line 39" in (tmp_path / "boot.log").read_text()


def test_a_missing_program_is_a_failed_step(boot, tmp_path):
    steps = boot.Steps(tmp_path / "boot.log", stream=io.StringIO())
    with pytest.raises(SystemExit, match="could not start"), steps.step("apt", "x"):
        steps.run([str(tmp_path / "no-such-program")])


def test_a_ready_environment_prints_nothing_and_keeps_the_last_log(boot, tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    monkeypatch.setattr(boot, "VENV", venv)
    monkeypatch.setattr(boot, "STAMP", venv / ".vrl-env-stamp")
    boot.STAMP.write_text(boot._stamp_value())
    (tmp_path / "boot.log").write_text("the last real bootstrap")
    out = io.StringIO()
    boot.ensure_venv(boot.Steps(tmp_path / "boot.log", stream=out))
    assert out.getvalue() == ""
    assert (tmp_path / "boot.log").read_text() == "the last real bootstrap"


PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]

[project]
name = "vrl"
version = "0.1.0"
description = "text"
dependencies = ["torch"]

[project.optional-dependencies]
wandb = ["wandb"]

[tool.ruff]
line-length = 110
"""


def test_the_stamp_hashes_what_the_environment_holds_not_this_script(boot, tmp_path, monkeypatch):
    (tmp_path / "jobs" / "env").mkdir(parents=True)
    lock = tmp_path / "jobs" / "env" / "requirements-cpu.lock"
    lock.write_text("torch==2.13.0\n")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.setattr(boot, "ROOT", tmp_path)
    monkeypatch.setattr(boot, "LOCK", lock)
    base = boot._stamp_value()

    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("110", "100").replace('"text"', '"other"'))
    assert boot._stamp_value() == base  # tool settings and the description install nothing

    (tmp_path / "pyproject.toml").write_text(
        PYPROJECT.replace('wandb = ["wandb"]', 'wandb = ["wandb>=0.19"]')
    )
    assert boot._stamp_value() != base  # the project's dependency metadata does
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    lock.write_text("torch==2.13.0\nwandb==0.31.0\n")
    assert boot._stamp_value() != base  # the lock does
    lock.write_text("torch==2.13.0\n")
    monkeypatch.setattr(boot, "SHIM_PTH", boot.SHIM_PTH + "# changed\n")
    assert boot._stamp_value() != base  # the hook written into site-packages does


def test_editing_the_bootstrap_script_does_not_reinstall(boot, tmp_path, monkeypatch):
    """A copy of jobs/_bootstrap.py with other progress wording stamps the same lock and project alike."""
    (tmp_path / "jobs" / "env").mkdir(parents=True)
    for rel in ("pyproject.toml", "jobs/env/requirements-cpu.lock"):
        (tmp_path / rel).write_bytes((ROOT / rel).read_bytes())
    source = (ROOT / "jobs" / "_bootstrap.py").read_text()
    edited = source.replace("preparing the environment", "setting things up") + "\n# a comment\n"
    assert edited != source
    (tmp_path / "jobs" / "_bootstrap.py").write_text(edited)
    spec = importlib.util.spec_from_file_location(
        "vrl_jobs_bootstrap_edited", tmp_path / "jobs" / "_bootstrap.py"
    )
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    monkeypatch.setattr(boot, "ROOT", tmp_path)
    monkeypatch.setattr(boot, "LOCK", tmp_path / "jobs" / "env" / "requirements-cpu.lock")
    assert copy._stamp_value() == boot._stamp_value()
