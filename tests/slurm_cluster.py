"""The real single-node Slurm cluster of ``slurm/local/`` for integration tests: start it, query it.

Tests get it through the session fixture ``slurm_cluster`` (tests/conftest.py). Nothing here is mocked:
every query is a real ``sacct``/``squeue``/``scontrol`` call against the running daemons.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "slurm" / "local"
DEFAULT_BASE = "/tmp/vrl-slurm"

# sacct states after which a job record no longer changes (a requeued job gets a new record).
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)


class ClusterStartError(RuntimeError):
    """start.sh failed; the message carries its output, which ends with the daemons' logs."""


@dataclass
class LocalSlurmCluster:
    """Handle on a running cluster: its environment and the state queries tests need."""

    base: Path
    """Private base directory: configs in etc/, daemon logs in log/."""
    env: dict[str, str] = field(repr=False)
    """The full environment for Slurm clients and submitters: os.environ plus SLURM_CONF."""

    @property
    def slurm_conf(self) -> str:
        return self.env["SLURM_CONF"]

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client command against this cluster and capture its output."""
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def sacct_states(self, job_id: str, duplicates: bool = False) -> list[str]:
        """States of the job's records, oldest first. A requeued job has one record per run, and
        ``sacct`` shows only the newest unless ``duplicates`` is set. Words after the state
        ("CANCELLED by 0") are dropped. An array parent id lists one record per task."""
        cmd = ["sacct", "-j", str(job_id), "-X", "-n", "-P", "-o", "State"]
        if duplicates:
            cmd.append("--duplicates")
        out = self.run(*cmd).stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def sacct_state(self, job_id: str) -> str:
        """State of one job or array task ("12" or "12_3") from the accounting database; "UNKNOWN" until
        slurmdbd has its record. Raises ValueError for an array parent id (one record per task)."""
        states = self.sacct_states(job_id)
        if not states:
            return "UNKNOWN"
        if len(states) > 1:
            raise ValueError(f"job {job_id} has {len(states)} records {states}: ask for one array task (J_i)")
        return states[0]

    def wait_state(self, job_id: str, states: Iterable[str], timeout: float = 120.0) -> str:
        """Poll sacct until the job reaches one of ``states`` and return it. Raises TimeoutError, with
        the job's record and the controller's log, when it does not within ``timeout`` seconds; also
        fails early when the job ends in a terminal state that was not asked for."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        state = "UNKNOWN"
        while time.monotonic() < deadline:
            state = self.sacct_state(job_id)
            if state in wanted:
                return state
            if state in TERMINAL_STATES:
                raise AssertionError(
                    f"job {job_id} ended {state}, expected {sorted(wanted)}\n{self.report(job_id)}"
                )
            time.sleep(0.5)
        raise TimeoutError(
            f"job {job_id} still {state} after {timeout:.0f} s, expected {sorted(wanted)}\n{self.report(job_id)}"
        )

    def squeue_state(self, job_id: str) -> tuple[str, str]:
        """(state, reason) from the controller, ("", "") once the job left the queue."""
        out = self.run("squeue", "-h", "-j", str(job_id), "-o", "%T|%r", check=False).stdout.strip()
        if not out:
            return "", ""
        state, _, reason = out.splitlines()[0].partition("|")
        return state, reason

    def release(self, job_id: str, timeout: float = 120.0) -> None:
        """Let a requeued job start again now instead of ~121 s later.

        Slurm gives a requeued job BeginTime = now + 121 s. Setting StartTime=now releases it, but only
        once the old run is fully gone: released at once, the new launch fails with "Job credential
        revoked". So: wait until the job is PENDING for BeginTime, wait 2 s more, then update; repeat
        the update if the job is still held.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, reason = self.squeue_state(job_id)
            if state == "PENDING" and reason == "BeginTime":
                break
            if not state or state in TERMINAL_STATES:
                raise AssertionError(
                    f"job {job_id} left the queue before it was released\n{self.report(job_id)}"
                )
            time.sleep(0.5)
        else:
            raise TimeoutError(f"job {job_id} never became PENDING (BeginTime)\n{self.report(job_id)}")
        time.sleep(2.0)
        while time.monotonic() < deadline:
            self.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
            time.sleep(1.0)
            state, reason = self.squeue_state(job_id)
            if not (state == "PENDING" and reason == "BeginTime"):
                return
        raise TimeoutError(f"job {job_id} still held for BeginTime after release\n{self.report(job_id)}")

    def report(self, job_id: str | None = None) -> str:
        """The job's accounting history and controller view plus the end of every daemon log."""
        parts = []
        if job_id is not None:
            hist = self.run(
                "sacct",
                "-j",
                str(job_id),
                "--duplicates",
                "-o",
                "JobID,State,ExitCode,Start,End",
                check=False,
            )
            show = self.run("scontrol", "show", "job", str(job_id), check=False)
            parts += [
                f"$ sacct --duplicates -j {job_id}\n{hist.stdout}{hist.stderr}",
                show.stdout + show.stderr,
            ]
        for log in sorted([*(self.base / "log").glob("*.log"), *(self.base / "log").glob("*.out")]):
            lines = log.read_text(errors="replace").splitlines()[-20:]
            parts.append(f"===== {log} =====\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the daemons (stop.sh); the base directory stays so that job ids keep counting up."""
        _script("stop.sh", str(self.base), timeout=120, check=False)

    def detach(self) -> bool:
        """This process is done with the cluster. The last test process to detach stops it, but only if
        test processes started it (a cluster a user started stays up). Returns True if it stopped it.

        Several test sessions may share the one cluster of the machine; each registers its pid under
        <base>/clients/ so that one session's end does not kill another's jobs.
        """
        with _clients_lock(self.base) as clients:
            (clients / str(os.getpid())).unlink(missing_ok=True)
            if _live_clients(clients) or not (clients / STARTED_BY_TESTS).exists():
                return False
            self.stop()
            (clients / STARTED_BY_TESTS).unlink(missing_ok=True)
            return True


# In <base>/clients/: present while the running cluster was started by test processes.
STARTED_BY_TESTS = "started-by-tests"


@contextlib.contextmanager
def _clients_lock(base: Path) -> Iterator[Path]:
    """Hold <base>/clients/.lock (not the scripts' <base>/.lock: we call the scripts while holding it)."""
    clients = base / "clients"
    clients.mkdir(parents=True, exist_ok=True)
    with open(clients / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield clients


def _live_clients(clients: Path) -> list[int]:
    """Registered pids whose process still exists; stale entries (a killed session) are removed."""
    live = []
    for entry in clients.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            os.kill(int(entry.name), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
            continue
        live.append(int(entry.name))
    return live


def _script(name: str, *args: str, timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one of slurm/local/*.sh; ClusterStartError (with its output) if it fails or hangs."""
    cmd = [str(SCRIPTS / name), *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ClusterStartError(f"{' '.join(cmd)} did not finish in {timeout:.0f} s:\n{exc.stderr}") from exc
    if check and res.returncode != 0:
        raise ClusterStartError(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def start_cluster(base: str | os.PathLike[str] | None = None, timeout: float = 300.0) -> LocalSlurmCluster:
    """Install the packages if missing (install.sh), start the cluster (start.sh, idempotent), register
    this process as a client (see ``detach``) and return the handle. Raises ClusterStartError with the
    scripts' output when either fails."""
    base_dir = Path(base or os.environ.get("VRL_SLURM_BASE") or DEFAULT_BASE)
    _script("install.sh", timeout=timeout)
    with _clients_lock(base_dir) as clients:
        if _script("status.sh", str(base_dir), timeout=timeout, check=False).returncode != 0:
            (clients / STARTED_BY_TESTS).touch()
        _script("start.sh", str(base_dir), timeout=timeout)
        (clients / str(os.getpid())).touch()
    env = dict(os.environ, SLURM_CONF=str(base_dir / "etc" / "slurm.conf"))
    return LocalSlurmCluster(base=base_dir, env=env)
