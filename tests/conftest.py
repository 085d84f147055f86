"""Session fixtures shared by the whole test tree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import gpu_tier
import pytest
from slurm_cluster import ClusterStartError, LocalSlurmCluster, start_cluster

_GPU_REPORT = gpu_tier.report_from_env()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped with the reason where there is no CUDA (see gpu_tier.py)."""
    gpu_tier.skip_without_cuda(items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """The gpu tier's result table: seconds and peak GPU memory of each ``gpu`` test."""
    if _GPU_REPORT is not None and "gpu" in item.keywords:
        yield from _GPU_REPORT.run_call(item)
    else:
        yield


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _GPU_REPORT is not None:
        _GPU_REPORT.record(report)


def pytest_collection_finish(session: pytest.Session) -> None:
    if _GPU_REPORT is not None:
        for item in session.items:
            if "gpu" in item.keywords:
                _GPU_REPORT.rows.setdefault(item.nodeid, gpu_tier.Row(item.nodeid))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _GPU_REPORT is not None and _GPU_REPORT.rows:
        _GPU_REPORT.write()


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurmCluster]:
    """The real single-node Slurm cluster (slurm/local/), started once per session.

    SLURM_CONF is set in os.environ for the session so that submitit's own sbatch/sacct/scontrol calls
    reach it. A cluster that cannot start fails the test with the start script's log, never skips it. At
    the end the last test session using it stops it if test sessions started it (not if a user did), unless
    VRL_SLURM_KEEP is set.
    """
    try:
        cluster = start_cluster()
    except ClusterStartError as exc:
        pytest.fail(f"the local Slurm cluster did not start:\n{exc}", pytrace=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", cluster.slurm_conf)
        yield cluster
    if not os.environ.get("VRL_SLURM_KEEP"):
        cluster.detach()


@pytest.fixture(scope="session", autouse=True)
def _session_vrl_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never write into the user's ~/.cache/vrl: one private VRL_HOME per test session, so tiny
    models and toy suites are built once per session and shared by the tests that need them."""
    home = tmp_path_factory.mktemp("session_vrl_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VRL_HOME", str(home))
        yield


@pytest.fixture(scope="session")
def tiny_qwen25(_session_vrl_home: None) -> Path:
    """The tiny Qwen2.5-VL checkpoint (built on first use)."""
    from vrl.models.tiny import resolve_model

    return resolve_model("tiny-qwen2.5-vl")
