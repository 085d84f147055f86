"""The project logger's result channel: a script's table goes bare to the current stdout, log lines do not."""

from __future__ import annotations

from vrl.log import get_logger, result_logger


def test_results_go_bare_to_stdout_and_log_lines_to_stderr(capsys):
    result_logger().info("| a | b |\n| 1 | 2 |")
    get_logger("vrl.test").warning("status line")
    out = capsys.readouterr()
    assert out.out == "| a | b |\n| 1 | 2 |\n"
    assert "status line" not in out.out
