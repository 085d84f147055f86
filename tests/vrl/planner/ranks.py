"""Start N ranks of ``plan_worker.py`` as subprocesses (torchrun-style environment) and collect results.

The same way the engine tests start theirs (``tests/vrl/engines/megatron/launch.py``): gloo on this CPU,
one thread per rank, logs kept per rank and shown when a rank fails."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("plan_worker.py")
ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(world: int, out_dir: Path, timeout: float = 600, **kwargs) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    procs, logs = [], []
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": str(ROOT),
        }
        log = open(out_dir / f"rank{rank}.log", "w")  # noqa: SIM115 (closed below)
        logs.append(log)
        cmd = [sys.executable, str(WORKER), str(out_dir), json.dumps({**kwargs, "limit_s": timeout})]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    failed = []
    try:
        for rank, proc in enumerate(procs):
            if proc.wait(timeout=timeout) != 0:
                failed.append(rank)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for log in logs:
            log.close()
    if failed:
        text = "\n".join(f"--- rank {r}\n" + (out_dir / f"rank{r}.log").read_text()[-4000:] for r in failed)
        raise RuntimeError(f"ranks {failed} failed:\n{text}")
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(world)]
