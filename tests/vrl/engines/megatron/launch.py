"""Start N ranks of ``dist_worker.py`` as subprocesses (torchrun-style environment) and collect results."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("dist_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(scenario: str, world: int, out_dir: Path, timeout: float = 300, **kwargs) -> list[dict]:
    """Run ``scenario`` on ``world`` ranks; returns each rank's result dict (raises with logs on failure)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    procs = []
    logs = contextlib.ExitStack()
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
        }
        log = logs.enter_context(open(out_dir / f"rank{rank}.log", "w"))  # noqa: SIM115 (closed by the stack)
        cmd = [sys.executable, str(WORKER), scenario, str(out_dir), json.dumps(kwargs, default=str)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    failed = []
    with logs:
        try:
            for rank, proc in enumerate(procs):
                if proc.wait(timeout=timeout) != 0:
                    failed.append(rank)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
    if failed:
        logs = "\n".join(f"--- rank {r}\n" + (out_dir / f"rank{r}.log").read_text()[-4000:] for r in failed)
        raise RuntimeError(f"ranks {failed} of '{scenario}' failed:\n{logs}")
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(world)]
