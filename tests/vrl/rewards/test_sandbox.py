"""The Python sandbox contains what a response's code does: loops, memory, forks, sockets, env, exits."""

import os

import pytest

from vrl.rewards.sandbox import SandboxLimits, run_python_tests

LIMITS = SandboxLimits(wall_s=3.0, cpu_s=1, memory_mb=256)


def passed(code, tests, limits=LIMITS):
    return run_python_tests(code, tests, limits)


def test_honest_code_passes():
    result = passed(
        "def f(x):\n    return x + 1\n", ["assert f(1) == 2", "assert f(2) == 3", "assert f(0) == 5"]
    )
    assert (result.compiled, result.passed, result.total) == (True, 2, 3)


def test_infinite_loop_is_stopped_and_earlier_tests_count():
    code = "def f(x):\n    if x == 0:\n        while True:\n            pass\n    return x\n"
    result = passed(code, ["assert f(1) == 1", "assert f(0) == 0", "assert f(2) == 2"])
    assert result.passed == 1
    assert result.total == 3


def test_sleeping_code_hits_the_wall_clock():
    result = passed("import time\ntime.sleep(60)\n", ["assert True"], SandboxLimits(wall_s=1.0))
    assert result.timed_out
    assert result.passed == 0


def test_ten_gigabytes_is_refused():
    result = passed("def f():\n    return len(bytearray(10 * 1024**3))\n", ["assert f() > 0"])
    assert result.passed == 0
    assert not result.timed_out


@pytest.mark.parametrize(
    "body",
    [
        "import os\n    return os.fork() >= 0",
        "import subprocess\n    return subprocess.run(['true']).returncode == 0",
        "import os\n    return os.system('true') == 0",
        "import socket\n    s = socket.socket()\n    s.connect(('127.0.0.1', 22))\n    return True",
        "import urllib.request\n    return bool(urllib.request.urlopen('http://example.com', timeout=1))",
        "import ctypes\n    return True",
    ],
)
def test_process_network_and_ctypes_are_refused(body):
    result = passed(f"def f():\n    {body}\n", ["assert f()"])
    assert result.compiled
    assert result.passed == 0


def test_environment_is_empty(monkeypatch):
    monkeypatch.setenv("VRL_SECRET_TOKEN", "hunter2")
    code = "import os\ndef env():\n    return dict(os.environ)\n"
    tests = [
        "assert 'VRL_SECRET_TOKEN' not in env()",
        "assert 'PATH' not in env() and 'HOME' not in env()",
        "assert set(env()) <= {'LC_CTYPE'}",  # Python's own locale coercion may set LC_CTYPE
    ]
    assert passed(code, tests).passed == 3


def test_runs_unprivileged_in_a_temporary_directory():
    tests = [f"import os\nassert os.getcwd() != {os.getcwd()!r}", "open('scratch.txt', 'w').write('x')"]
    assert passed("import os\n", tests).passed == 2
    if os.geteuid() == 0:
        assert passed("import os\n", ["import os\nassert os.geteuid() != 0"]).passed == 1


def test_exiting_early_does_not_pass_tests():
    assert passed("import os\nos._exit(0)\n", ["assert True"]).passed == 0
    assert passed("import sys\nsys.exit(0)\n", ["assert True"]).passed == 0


def test_printed_fake_results_do_not_count():
    code = 'print(\'deadbeef {"event": "test", "index": 0, "ok": true}\')\n'
    assert passed(code, ["assert False"]).passed == 0


def test_stdin_stdout_tests_compare_outside_the_sandbox():
    tests = [{"input": "3\n", "output": "6\n"}, {"input": "4\n", "output": "9\n"}]
    assert passed("print(int(input()) * 2)\n", tests).passed == 1


def test_syntax_error_is_not_compiled():
    result = passed("def f(:\n", ["assert True"])
    assert not result.compiled
    assert result.passed == 0


def test_namespace_isolation_has_no_network():
    result = run_python_tests("import socket\n", ["assert True"], SandboxLimits(wall_s=3.0, isolation="auto"))
    if result.isolation != "namespace":
        pytest.skip("unshare is not available on this machine")
    assert result.passed == 1


def test_malformed_tests_are_a_data_error():
    with pytest.raises(ValueError, match="assert string"):
        run_python_tests("x = 1", [{"input": "1"}])
