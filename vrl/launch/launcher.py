"""Submit a stage: run folder, resolved config, submitit job(s), optional wait with progress.

submitit's own pickles — the submitted callable (``*_submitted.pkl``, read by the job) and its result
(``*_result.pkl``, read here) — are submitit's protocol between the submitting process and its jobs.
They live in ``<run>/submitit/``, which is made private to the user (mode 0700), and the launcher's own
polling reads results with an unpickler that admits no importable types.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import submitit
from tqdm import tqdm

from vrl.config import ConfigError, save
from vrl.launch import failure, run_lock
from vrl.launch.config import LaunchConfig
from vrl.launch.executors import make_executor
from vrl.launch.job import StageJob
from vrl.launch.stages import StageSpec
from vrl.log import get_logger
from vrl.safe_load import UnsafeFileError, restricted_load

logger = get_logger(__name__)


@dataclass
class Submission:
    run_dir: Path
    jobs: list[submitit.Job]
    finalize: submitit.Job | None = None

    @property
    def all_jobs(self) -> list[submitit.Job]:
        return [*self.jobs, *([self.finalize] if self.finalize else [])]


def run_dir_for(stage: str, cfg: LaunchConfig) -> Path:
    name = cfg.name or datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(cfg.run_root).resolve() / stage / name


def describe(job: submitit.Job) -> str:
    text = f"job {job.job_id}  stdout {job.paths.stdout}  stderr {job.paths.stderr}"
    if _is_local(job):
        text += f"\n  (a local job: stopping this command, Ctrl-C or `kill {os.getpid()}`, stops the job)"
    return text


def _is_local(job: submitit.Job) -> bool:
    """A job of the local executor started by this process (its controller is our child)."""
    return getattr(job, "_process", None) is not None


def submit(spec: StageSpec, cfg: LaunchConfig) -> Submission:
    """Create the run folder, save the resolved config and submit the stage's job(s).

    Before anything is written: a run folder that a running job holds is refused
    (:mod:`vrl.launch.run_lock`), and a stage's ``before_submit(cfg, run_dir)`` hook may refuse the
    settings (raising :class:`~vrl.config.ConfigError`) or answer that there is nothing to do (a message;
    then no job is submitted)."""
    module = spec.load()
    run_dir = run_dir_for(spec.name, cfg)
    cfg.name = run_dir.name
    run_lock.check_free(run_dir)
    before_submit = getattr(module, "before_submit", None)
    if before_submit is not None:
        nothing_to_do = before_submit(cfg, run_dir)
        if nothing_to_do:
            logger.info("%s", nothing_to_do)
            return Submission(run_dir, [])
    run_dir.mkdir(parents=True, exist_ok=True)
    save(cfg, run_dir / "config.yaml")
    folder = run_dir / "submitit"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise ConfigError(
            f"{folder} belongs to another user: its job files would run their code; use another name="
        )
    folder.chmod(0o700)  # submitit's pickles: only this user may plant or read them
    executor = make_executor(cfg, folder, name=f"vrl-{spec.name}-{run_dir.name}")
    if not spec.is_array(module):
        job = executor.submit(StageJob(spec.name, cfg, run_dir, "run"))
        return Submission(run_dir, [job])
    tasks = list(module.plan(cfg))
    jobs: list[submitit.Job] = []
    if tasks:
        fn = StageJob(spec.name, cfg, run_dir, "task")
        jobs = executor.map_array(fn, tasks, list(range(len(tasks))), [len(tasks)] * len(tasks))
    sub = Submission(run_dir, jobs)
    if cfg.cluster == "slurm":
        # The finalize job waits for every array task (also failed ones: it reports what is missing).
        final_ex = make_executor(cfg, folder, name=f"vrl-{spec.name}-{run_dir.name}-finalize")
        extra = {"dependency": f"afterany:{jobs[0].job_id.split('_')[0]}"} if jobs else {}
        final_ex.update_parameters(nodes=1, ntasks_per_node=1, **extra)
        sub.finalize = final_ex.submit(StageJob(spec.name, cfg, run_dir, "finalize"))
    return sub


def _tail(path: Path, pos: int) -> int:
    """Copy new bytes of ``path`` from ``pos`` to our stderr; return the new position."""
    try:
        with path.open("rb") as fh:
            fh.seek(pos)
            data = fh.read()
    except FileNotFoundError:
        return pos
    if data:
        sys.stderr.write(data.decode(errors="replace"))
        sys.stderr.flush()
    return pos + len(data)


@contextlib.contextmanager
def _stop_jobs_on_signal(jobs: list[submitit.Job]) -> Iterator[None]:
    """While this process waits, SIGINT/SIGTERM/SIGHUP stop the local jobs it started, then exit
    (128 + signal). Slurm jobs keep running: the message says how to cancel them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        for job in jobs:
            if _is_local(job):
                _cancel(job)
                logger.error("%s: stopped local job %s", name, job.job_id)
            elif not isinstance(job, submitit.DebugJob):
                logger.error(
                    "%s: job %s keeps running on the cluster; stop it: scancel %s",
                    name,
                    job.job_id,
                    job.job_id,
                )
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait(sub: Submission, poll_s: float = 1.0, stream_logs: bool = True) -> int:
    """Block until all jobs end; stream a single job's log, show a bar for arrays. Return an exit status.

    Stopping this process (Ctrl-C, SIGTERM, SIGHUP) stops the local jobs it waits for."""
    with _stop_jobs_on_signal(sub.all_jobs):
        return _wait(sub, poll_s, stream_logs)


def _wait(sub: Submission, poll_s: float, stream_logs: bool) -> int:
    pending = list(sub.jobs)
    if pending and isinstance(pending[0], submitit.DebugJob):
        pass  # runs in this process when its result is asked for
    elif len(pending) == 1 and stream_logs:
        job = pending[0]
        positions = {"out": 0, "err": 0}
        cancelled = False
        while not job.done():
            positions["err"] = _tail(job.paths.stderr, positions["err"])
            positions["out"] = _tail(job.paths.stdout, positions["out"])
            failed = None if cancelled else failed_task(job)
            if failed is not None:
                logger.error(
                    "task %d of job %s failed: cancelling its other tasks (they would wait for it)",
                    failed,
                    job.job_id,
                )
                _cancel(job)
                cancelled = True
            time.sleep(poll_s)
        _tail(job.paths.stderr, positions["err"])
        _tail(job.paths.stdout, positions["out"])
    elif pending:
        with tqdm(total=len(pending), desc="array tasks", unit="task") as bar:
            done: set[int] = set()
            while len(done) < len(pending):
                for i, job in enumerate(pending):
                    if i not in done and job.done():
                        done.add(i)
                        bar.update(1)
                time.sleep(poll_s)
    status = 0
    for job in sub.jobs:
        status = max(status, _report(job))
    return status


def _cancel(job: submitit.Job) -> None:
    """Stop every task of ``job`` now.

    A local job's controller may ignore SIGINT (what submitit's ``cancel`` sends: processes started in
    the background of a non-interactive shell inherit SIGINT ignored) and the tasks ignore SIGTERM
    (submitit's preemption handling), so the local controller and its tasks are killed outright.
    """
    controller = getattr(job, "_process", None)
    if controller is None:
        job.cancel(check=False)  # Slurm: scancel
        return
    import psutil

    try:
        parent = psutil.Process(controller.pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def failed_task(job: submitit.Job) -> int | None:
    """Index of a task of a multi-task job that already ended with an error, from its result file.

    The other ranks of a torch.distributed world would block on the dead one; Slurm's srun stops them
    (``--kill-on-bad-exit``), the local executor waits for every task, so the launcher cancels.
    """
    if job.num_tasks <= 1:
        return None
    for i in range(job.num_tasks):
        path = job.task(i).paths.result_pickle
        if not path.exists():
            continue
        try:
            with path.open("rb") as fh:  # a failure is ("error", traceback text): no types to import
                outcome = restricted_load(fh, lambda module, name: False, str(path))[0]
        except (EOFError, pickle.UnpicklingError, FileNotFoundError):  # being written: look at the next poll
            continue
        except UnsafeFileError:  # a result holding objects: a success, not read here
            continue
        if outcome == "error":
            return i
    return None


def run_finalize_locally(spec: StageSpec, cfg: LaunchConfig, sub: Submission) -> int:
    """Local/debug executors have no dependencies: run the finalize phase once the array is done."""
    folder = sub.run_dir / "submitit"
    executor = make_executor(cfg, folder, name=f"vrl-{spec.name}-finalize")
    if cfg.cluster == "local":
        executor.update_parameters(tasks_per_node=1)
    sub.finalize = executor.submit(StageJob(spec.name, cfg, sub.run_dir, "finalize"))
    print(f"submitted finalize: {describe(sub.finalize)}", flush=True)
    return wait(Submission(sub.run_dir, [sub.finalize]))


def _report(job: submitit.Job) -> int:
    if failure.job_message(job) is not None:  # ended on a user error: jobs/submit.py prints its one screen
        return failure.USER_ERROR_STATUS
    try:
        results: list[Any] = job.results()
    except (submitit.core.utils.FailedJobError, submitit.core.utils.UncompletedJobError) as e:
        lines = str(e).strip().splitlines()
        logger.error("job %s failed:\n%s", job.job_id, "\n".join(lines[-25:]))
        logger.error("full logs: %s / %s", job.paths.stdout, job.paths.stderr)
        return 1
    result = results[0] if results else None  # rank 0's result
    if result:
        logger.info("job %s result: %s", job.job_id, result)
    return 0
