"""A user error raised inside a stage's job reaches the submitting command as one screen.

A stage raises :class:`~vrl.config.UserError` for a mistake in what the user gave. Inside a job,
:func:`exit_job` logs its message, leaves it next to the job's logs (``<job id>_<task>_user_error.txt``)
and ends the job with exit status 2 through :class:`StageExit`, a ``SystemExit``: submitit passes it
through without recording a traceback, Python prints none, and in ``cluster=debug`` (the job runs in the
submitting process) it also skips submitit's post-mortem debugger, which is for bugs. The submitter reads
the message back with :func:`job_message` and prints it with the path of the job's log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import submitit

from vrl.config import UserError
from vrl.log import get_logger

logger = get_logger(__name__)

#: exit status of a job (and of jobs/submit.py) ended by a user error
USER_ERROR_STATUS = 2
SUFFIX = "user_error.txt"


class StageExit(SystemExit):
    """Ends a job on a user error: status 2, ``screen`` holds what the user reads."""

    def __init__(self, screen: str) -> None:
        super().__init__(USER_ERROR_STATUS)
        self.screen = screen


def _job_environment() -> submitit.JobEnvironment | None:
    try:
        return submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job
        return None


def exit_job(error: UserError) -> NoReturn:
    """Report ``error`` from inside a job and end the job (see the module docstring)."""
    screen = error.screen()
    env = _job_environment()
    if env is not None and "SUBMITIT_FOLDER" in os.environ:  # a job of its own (not cluster=debug)
        logger.error("%s", screen)  # in the job's log, where the rest of its output is
        paths = env.paths
        path = paths.folder / f"{env.job_id}_{env.global_rank}_{SUFFIX}"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(screen + "\n")
        tmp.replace(path)
    raise StageExit(screen)


def job_message(job: submitit.Job) -> tuple[str, Path] | None:
    """(the user error a finished job left, the log file of the task that left it), or None.

    Only a message written after the job was submitted counts: a local job id is a process id, which a
    later job in the same run folder may get again."""
    folder = Path(job.paths.folder)
    if not folder.is_dir():
        return None
    try:
        submitted = job.paths.submitted_pickle.stat().st_mtime
    except OSError:
        submitted = 0.0
    for path in sorted(folder.glob(f"{job.job_id}_*_{SUFFIX}")):
        if path.stat().st_mtime >= submitted:
            log = path.with_name(path.name[: -len(SUFFIX)] + "log.err")  # submitit's %j_%t_log.err
            return path.read_text().rstrip("\n"), log
    return None
