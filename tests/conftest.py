"""Session fixtures shared by the whole test tree."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from slurm_cluster import ClusterStartError, LocalSlurmCluster, start_cluster


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
