"""Process-group setup from the environment the launcher exported (RANK, WORLD_SIZE, MASTER_ADDR, ...).

Built once by the stage and passed down: engines and the trainer receive a :class:`DistContext`, they
never read globals to find their groups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from vrl import device


@dataclass
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    mesh: DeviceMesh | None
    """1-D mesh over all ranks (FSDP's data-parallel mesh)."""
    dp_rank: int = 0
    """Data-parallel rank: ranks of one model-parallel group (Megatron TP×PP) share it and see the same data."""
    dp_size: int = 1
    """Data-parallel size: world_size / (tensor_parallel × pipeline_parallel × sequence_parallel)."""
    sp_size: int = 1
    """Sequence-parallel size S (``engine.sequence_parallel_size``): S consecutive ranks share one sample,
    each holding 1/S of its tokens (Ulysses, :mod:`vrl.engines.sequence_parallel`)."""
    sp_rank: int = 0
    """This rank's position in its sequence-parallel group (which 1/S slice of the tokens it holds)."""
    sp_group: dist.ProcessGroup | None = None
    """The S ranks sharing this rank's samples (ranks ``dp_rank·S … dp_rank·S + S − 1``); None when S = 1."""
    dp_group: dist.ProcessGroup | None = None
    """The DP ranks holding the same sequence slice (``sp_rank, sp_rank + S, …``); None: the default group
    (S = 1, or a single process)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def all_reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar metrics over ranks (one collective for the whole dict)."""
        if self.world_size == 1 or not values:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist())}

    def gather_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average metrics over the ranks that have each key (ranks may see different problem types)."""
        if self.world_size == 1:
            return dict(values)
        gathered: list[dict[str, float]] = [{} for _ in range(self.world_size)]
        dist.all_gather_object(gathered, dict(values))
        keys = sorted({k for d in gathered for k in d})
        return {k: sum(d[k] for d in gathered if k in d) / sum(1 for d in gathered if k in d) for k in keys}

    def gather_list(self, items: list) -> list:
        """Concatenate every rank's list (rank order)."""
        if self.world_size == 1:
            return list(items)
        gathered: list[list] = [[] for _ in range(self.world_size)]
        dist.all_gather_object(gathered, list(items))
        return [x for part in gathered for x in part]

    def all_reduce_sum_dict(self, values: dict[str, float]) -> dict[str, float]:
        """Sum scalars over ranks; every rank must pass the same keys."""
        if self.world_size == 1 or not values:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist()))

    def all_reduce_sum(self, value: float) -> float:
        if self.world_size == 1:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item())


def dp_coordinates(rank: int, world: int, model_parallel: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """(dp_rank, dp_size) for Megatron-Core's default rank order "tp-cp-ep-dp-pp": tensor-parallel ranks
    vary fastest, pipeline stages slowest, data-parallel replicas in between."""
    tp, pp = model_parallel
    if world % (tp * pp):
        raise ValueError(
            f"world size {world} is not a multiple of tensor_parallel × pipeline_parallel = {tp * pp}"
        )
    dp = world // (tp * pp)
    return (rank // tp) % dp, dp


def sp_coordinates(rank: int, world: int, sequence_parallel: int) -> tuple[int, int, int, int]:
    """(dp_rank, dp_size, sp_rank, sp_size): sequence-parallel ranks are consecutive (they exchange
    activations in every attention layer, so they should share a node), data-parallel replicas outer."""
    if sequence_parallel < 1 or world % sequence_parallel:
        raise ValueError(
            f"engine.sequence_parallel_size={sequence_parallel} does not divide the world size {world} "
            f"(world = data parallel × sequence parallel); use a divisor of {world}"
        )
    return rank // sequence_parallel, world // sequence_parallel, rank % sequence_parallel, sequence_parallel


def _sp_groups(world: int, sp: int) -> tuple[list[list[int]], list[list[int]]]:
    """Rank lists of every sequence-parallel group and every data-parallel group."""
    sp_groups = [list(range(i * sp, (i + 1) * sp)) for i in range(world // sp)]
    dp_groups = [list(range(j, world, sp)) for j in range(sp)]
    return sp_groups, dp_groups


def init_distributed(
    timeout_min: int = 30, model_parallel: tuple[int, int] = (1, 1), sequence_parallel: int = 1
) -> DistContext:
    """Initialise the default process group (always, also for one process: FSDP2 needs a mesh).

    ``model_parallel`` = (tensor_parallel, pipeline_parallel) sizes, to derive data-parallel coordinates.
    ``sequence_parallel`` = S (fsdp only): the sequence-parallel and data-parallel groups are built here,
    once, on every rank (``new_group`` is collective); the layout is checked before any group starts."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if sequence_parallel > 1:
        if model_parallel != (1, 1):
            raise ValueError(
                "engine.sequence_parallel_size > 1 is an fsdp feature; it cannot combine with Megatron "
                f"tensor/pipeline parallelism {model_parallel}"
            )
        sp_coordinates(rank, world, sequence_parallel)  # raises before the process group starts
    dev = device.device_for(local_rank)
    if not dist.is_initialized():
        init_method = None
        if world == 1 and not {"MASTER_ADDR", "MASTER_PORT"} <= os.environ.keys():
            # A private rendezvous, not exported: child processes must not inherit this port.
            init_method = f"tcp://127.0.0.1:{_free_port()}"
        dist.init_process_group(
            device.backend(),
            init_method=init_method,
            rank=rank,
            world_size=world,
            timeout=timedelta(minutes=timeout_min),
        )
    mesh = init_device_mesh(dev.type, (world,), mesh_dim_names=("dp",))
    device.configure_cpu_threads()
    if sequence_parallel == 1:
        dp_rank, dp_size = dp_coordinates(rank, world, model_parallel)
        return DistContext(
            rank=rank,
            world_size=world,
            local_rank=local_rank,
            device=dev,
            mesh=mesh,
            dp_rank=dp_rank,
            dp_size=dp_size,
        )
    dp_rank, dp_size, sp_rank, sp_size = sp_coordinates(rank, world, sequence_parallel)
    sp_ranks, dp_ranks = _sp_groups(world, sp_size)
    sp_group = dp_group = None
    for ranks in sp_ranks:  # every rank creates every group, in the same order
        group = dist.new_group(ranks)
        if rank in ranks:
            sp_group = group
    for ranks in dp_ranks:
        group = dist.new_group(ranks)
        if rank in ranks:
            dp_group = group
    return DistContext(
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        device=dev,
        mesh=mesh,
        dp_rank=dp_rank,
        dp_size=dp_size,
        sp_size=sp_size,
        sp_rank=sp_rank,
        sp_group=sp_group,
        dp_group=dp_group,
    )


def shutdown() -> None:
    """Tear down after every rank got here: destroying while a peer still sends aborts it (gloo)."""
    if dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
