"""The callable submitit runs: one stage phase inside a job, checkpointable for preemption/requeue."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import submitit

from vrl.config import UserError
from vrl.launch import failure
from vrl.launch.context import RunContext
from vrl.launch.stages import get_stage
from vrl.log import get_logger, setup_logging

logger = get_logger(__name__)

PHASES = ("run", "task", "finalize")


def master_port(job_id: str) -> int:
    """The rendezvous port every task of a job derives alike from the job id.

    It lies below Linux's ephemeral range (32768-60999), where the kernel picks the local ports of
    outgoing connections: submitit's own choice (20000-60000) once hit such a port (EADDRINUSE).
    """
    return random.Random(f"vrl-{job_id}").randint(20000, 32767)


def export_distributed_env() -> None:
    """Export torch.distributed's env:// variables from submitit's job environment.

    Outside a job only sets what is missing, so a launcher that already set them (torchrun, tests) wins.
    Inside a job every value is the job's own: values inherited from the submitting process (Slurm
    exports its environment) belong to another process group, possibly still listening on that port.
    """
    single = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
    try:
        job_env = submitit.JobEnvironment()
    except RuntimeError:
        job_env = None
    if job_env is None:
        for var, value in single.items():
            os.environ.setdefault(var, value)
        return
    if job_env.num_tasks <= 1:
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            os.environ.pop(var, None)  # vrl.distributed then rendezvous on a private free port
        os.environ.update(single)
        return
    os.environ["MASTER_PORT"] = str(master_port(str(job_env.job_id)))
    dist = submitit.helpers.TorchDistributedEnvironment()
    values = {
        "MASTER_ADDR": dist.master_addr,
        "MASTER_PORT": str(dist.master_port),
        "RANK": str(dist.rank),
        "WORLD_SIZE": str(dist.world_size),
        "LOCAL_RANK": str(dist.local_rank),
        "LOCAL_WORLD_SIZE": str(dist.local_world_size),
    }
    for var, value in values.items():
        os.environ[var] = value


def watch_submitter(pid: int, started: float, poll_s: float = 1.0) -> threading.Thread:
    """Kill this process once the process ``pid`` (started at ``started``, psutil's create time, so a
    reused pid does not count) is gone.

    A local job is the child of the ``jobs/submit.py`` that started it: stopping that command stops the
    job. Its signal handler cancels the job; this also covers a SIGKILL, which no handler sees. The job's
    checkpoints are atomic, so an abrupt end loses only the work since the last one.
    """

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            try:
                alive = psutil.Process(pid).create_time() == started
            except psutil.NoSuchProcess:
                alive = False
            if not alive:
                logger.error("jobs/submit.py (pid %d) that started this local job is gone: stopping", pid)
                os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="vrl-watch-submitter", daemon=True)
    thread.start()
    return thread


class StageJob(submitit.helpers.Checkpointable):
    """Runs ``phase`` of stage ``stage`` with ``cfg`` in ``run_dir``.

    On USR2 (time limit) or preemption submitit calls :meth:`checkpoint`, which gives the stage module a
    chance to persist state (``on_preempt(cfg, ctx)``) and resubmits the same call: stages resume from
    the checkpoints they keep in the run folder, so the requeued job continues where it stopped.
    A ``cluster=local`` job ends with the process that created this object (:func:`watch_submitter`).
    """

    def __init__(self, stage: str, cfg: Any, run_dir: str | Path, phase: str = "run") -> None:
        assert phase in PHASES, phase
        self.stage = stage
        self.cfg = cfg
        self.run_dir = str(run_dir)
        self.phase = phase
        me = psutil.Process()
        self.submitter = (me.pid, me.create_time()) if getattr(cfg, "cluster", "") == "local" else None

    def _context(self, task_index: int, num_tasks: int) -> RunContext:
        return RunContext.from_env(Path(self.run_dir), task_index=task_index, num_tasks=num_tasks)

    def __call__(self, task: Any = None, task_index: int = 0, num_tasks: int = 1) -> Any:
        export_distributed_env()
        setup_logging(self.cfg.log_level, force=True)
        submitter = getattr(self, "submitter", None)  # absent in jobs pickled by an older vrl
        if submitter is not None:
            watch_submitter(*submitter)
        module = get_stage(self.stage).load()
        ctx = self._context(task_index, num_tasks)
        try:
            if self.phase == "run":
                return module.run(self.cfg, ctx)
            if self.phase == "task":
                return module.run_task(self.cfg, task, ctx)
            return module.finalize(self.cfg, ctx)
        except UserError as e:  # the user's mistake, not a bug: one screen for the submitter, status 2
            failure.exit_job(e)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        module = get_stage(self.stage).load()
        hook = getattr(module, "on_preempt", None)
        if hook is not None:
            task_index = kwargs.get("task_index", args[1] if len(args) > 1 else 0)
            num_tasks = kwargs.get("num_tasks", args[2] if len(args) > 2 else 1)
            hook(self.cfg, self._context(task_index, num_tasks))
        logger.warning(
            "stage %s (%s) preempted: requeuing; it resumes from its last checkpoint", self.stage, self.phase
        )
        return super().checkpoint(*args, **kwargs)
