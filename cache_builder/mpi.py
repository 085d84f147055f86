"""``launcher=mpi``: one shard file per MPI rank, rank 0 plans and writes the index.

Run as ``mpirun -n N python -m cache_builder build launcher=mpi ...``. PyPI h5py has no parallel (mpio)
HDF5 driver, and none is needed: every rank writes its own shard file and the index stitches them.
"""

from __future__ import annotations

from typing import Any

from cache_builder import build
from cache_builder.config import CacheConfig
from vrl.log import get_logger

logger = get_logger(__name__)


def build_mpi(cfg: CacheConfig) -> dict[str, Any] | None:
    """Build shard ``rank`` of ``size``; rank 0 returns the summary after the index is written."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if cfg.num_shards not in (1, size):
        logger.warning("launcher=mpi: num_shards=%d ignored, one shard per rank (%d)", cfg.num_shards, size)
    tasks = None
    error = None
    if rank == 0:
        try:
            tasks = build.plan_shards(cfg, num_shards=size)
        except ValueError as e:  # bad input file: every rank must stop, not wait forever
            error = str(e)
    tasks, error = comm.bcast((tasks, error), root=0)
    if error:
        raise ValueError(error)
    try:
        summary = build.build_shard(cfg, tasks[rank], position=rank)
    except BaseException:
        # A rank that dies alone leaves the others waiting in gather forever: take the job down instead.
        logger.exception("rank %d failed; aborting the MPI job", rank)
        comm.Abort(1)
        raise
    summaries = comm.gather(summary, root=0)
    result = build.finalize(cfg, summaries) if rank == 0 else None
    comm.Barrier()
    return result
