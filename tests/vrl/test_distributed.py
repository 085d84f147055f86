"""vrl.distributed: a single process rendezvous privately; jobs get their own rendezvous variables."""

import os
import subprocess
import sys


def test_single_process_group_does_not_export_its_port():
    # A port exported here would be inherited by every job this process launches (EADDRINUSE there).
    code = (
        "import os; from vrl.distributed import init_distributed, shutdown; "
        "ctx = init_distributed(); assert ctx.world_size == 1; "
        "print(sorted(k for k in os.environ if k.startswith('MASTER_'))); shutdown()"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASTER_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_jobs_replace_inherited_rendezvous_variables(monkeypatch):
    import submitit

    from vrl.launch import job

    class OneTask:
        num_tasks = 1

    monkeypatch.setenv("MASTER_PORT", "46839")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.setenv(var, "3")  # inherited values; monkeypatch restores the originals afterwards
    monkeypatch.setattr(submitit, "JobEnvironment", OneTask)
    job.export_distributed_env()
    assert "MASTER_PORT" not in os.environ and "MASTER_ADDR" not in os.environ
    assert os.environ["RANK"] == "0" and os.environ["WORLD_SIZE"] == "1"
    assert job.master_port("123") == job.master_port("123") and 20000 <= job.master_port("9_1") <= 32767
