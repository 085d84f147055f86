"""``python jobs/submit.py stage=<name> [cluster=local|slurm|debug] [key=value ...]``.

A mistake in what the user gave (:class:`~vrl.config.UserError`: a key, a data file, a record, a model,
an output folder) ends the command with one screen — ``error:``, ``hint:``, the job's log file when the
job found it — and exit status 2, without a traceback, whether it was found while submitting (the
checks of :mod:`vrl.launch.preflight`, before anything is written) or inside the job
(:mod:`vrl.launch.failure`). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vrl.config import ConfigError, UserError, get_preset, parse, preset_names, to_yaml
from vrl.launch import failure, launcher, preflight
from vrl.launch.stages import STAGES, get_stage
from vrl.log import get_logger, setup_logging

logger = get_logger(__name__)

USAGE = """usage: python jobs/submit.py stage=<name> [cluster=local|slurm|debug] [profile=<name>] [key=value ...]
       python jobs/submit.py stage=<name> print_config=true     (resolved config with docs, then exit)
       python jobs/submit.py stage=<name> preset=<preset>       (a named preset as the base config;
                                                                 preset=none: the schema defaults)

stages:
{stages}"""


def _usage() -> str:
    return USAGE.format(stages="\n".join(f"  {s.name:<10} {s.summary}" for s in STAGES.values()))


def _pop(args: list[str], key: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(f"{key}="):
            del args[i]
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str]) -> int:
    setup_logging()
    args = list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    try:
        stage_name = _pop(args, "stage")
        if stage_name is None:
            raise ConfigError("Missing stage=<name>.\n" + _usage())
        spec = get_stage(stage_name)
        module = spec.load()
        preset = _pop(args, "preset")
        if preset is None:
            preset = spec.default_preset
            if preset and any(a.startswith(("model=", "data.train_files=")) for a in args):
                logger.warning(
                    "stage %s starts from its default preset '%s', tuned for the embedded toy run; name a "
                    "preset for your model and data (preset=%s, or preset=none for the schema defaults)",
                    spec.name,
                    preset,
                    "|".join(n for n in preset_names(spec.name) if n != preset) or "none",
                )
        base = get_preset(spec.name, preset) if preset not in ("", "none") else module.Config
        cfg, print_config = parse(base, args)
        if print_config:
            print(to_yaml(cfg, with_docs=True), end="")
            return 0
        setup_logging(cfg.log_level, force=True)
        if hasattr(module, "run_here"):  # answers here, submits nothing (stage=plan)
            return module.run_here(cfg)
        preflight.check_stage(module, cfg)
        if spec.name == "train" and cfg.cluster == "slurm":  # memory plan before queueing (vrl.planner)
            from vrl.planner.stage import check_before_submit

            check_before_submit(cfg)
        sub = launcher.submit(spec, cfg)
    except UserError as e:
        return _fail(e.screen())
    print(f"run folder: {sub.run_dir}", flush=True)
    for job in sub.all_jobs:
        print(f"submitted {spec.name}: {launcher.describe(job)}", flush=True)
    must_wait = cfg.wait or cfg.cluster in ("local", "debug")
    if not must_wait:
        print("not waiting (wait=false): follow the logs above; `sacct -j <id>` shows states", flush=True)
        return 0
    try:
        status = launcher.wait(sub)
        if status == 0 and sub.finalize is None and spec.is_array(module):
            status = launcher.run_finalize_locally(spec, cfg, sub)
        elif sub.finalize is not None:
            status = max(status, launcher.wait(launcher.Submission(sub.run_dir, [sub.finalize])))
    except failure.StageExit as e:  # cluster=debug: the job ran here and ended on a user error
        status = _fail(e.screen)
    else:
        status = _report_user_error(sub, status)
    print(f"{spec.name}: {'done' if status == 0 else 'FAILED'} (run folder {sub.run_dir})", flush=True)
    return status


def _fail(screen: str, log: str = "") -> int:
    sys.stderr.write(screen + (f"\nlog: {log}" if log else "") + "\n")
    sys.stderr.flush()
    return failure.USER_ERROR_STATUS


def _report_user_error(sub: launcher.Submission, status: int) -> int:
    """A job that ended on a user error: its message (once, with the job's log) and status 2."""
    if status == 0:
        return 0
    for job in sub.all_jobs:
        found = failure.job_message(job)
        if found is not None:
            return _fail(found[0], str(found[1]))
    return status
