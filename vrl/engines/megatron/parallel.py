"""Megatron-Core process groups from the project's :class:`~vrl.distributed.DistContext`, built once per process,
and the gradient collectives the engine runs after the pipeline schedule.

Rank order is megatron's default "tp-cp-ep-dp-pp": tensor-parallel ranks vary fastest, pipeline stages
slowest, which is what :func:`vrl.distributed.dp_coordinates` assumes (checked at start-up here, so the
trainer's data sharding and megatron's groups can never disagree).

Gradients: every parameter is averaged over the data-parallel group; the vision tower (replicated over
tensor-parallel ranks, outside megatron's sharding) is also averaged over the tensor-parallel group;
Qwen3's q/k norm weights (replicated, but each rank normalises only its own heads) and, with sequence
parallelism, the layer norms are summed over it; a tied embedding split over first and last pipeline stage
has its two gradients summed. Without the distributed optimizer plain collectives do all of it; with it
(:mod:`dist_optimizer`) megatron's DDP reduce-scatters over data-parallel ranks and the rest runs here on
its fp32 ``main_grad`` buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from vrl.distributed import DistContext, dp_coordinates
from vrl.engines.megatron import compat


@dataclass
class ParallelGroups:
    tp: int
    pp: int
    dp: int
    tp_rank: int
    pp_rank: int
    dp_rank: int
    tp_group: dist.ProcessGroup
    pp_group: dist.ProcessGroup
    dp_group: dist.ProcessGroup
    mp_group: dist.ProcessGroup
    """All tensor × pipeline ranks of this model replica."""
    embedding_group: dist.ProcessGroup | None
    """First and last pipeline stage of this replica (tied embeddings), or None when not a member."""
    pp_ranks: list[int]
    """Global ranks of this rank's pipeline group, stage order."""

    @property
    def first_stage(self) -> bool:
        return self.pp_rank == 0

    @property
    def last_stage(self) -> bool:
        return self.pp_rank == self.pp - 1


def init_parallel(dist_ctx: DistContext, tp: int, pp: int, seed: int = 1) -> ParallelGroups:
    """Initialise (or reuse) megatron's model-parallel state for ``tp`` × ``pp`` and seed its RNG tracker."""
    from megatron.core import parallel_state as ps

    def current() -> tuple[int, int]:
        return ps.get_tensor_model_parallel_world_size(), ps.get_pipeline_model_parallel_world_size()

    if ps.model_parallel_is_initialized() and current() != (tp, pp):
        ps.destroy_model_parallel()
    if not ps.model_parallel_is_initialized():
        with compat.cpu_redirect():
            ps.initialize_model_parallel(tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp)
    compat.init_rng(seed)
    groups = ParallelGroups(
        tp=tp,
        pp=pp,
        dp=ps.get_data_parallel_world_size(),
        tp_rank=ps.get_tensor_model_parallel_rank(),
        pp_rank=ps.get_pipeline_model_parallel_rank(),
        dp_rank=ps.get_data_parallel_rank(),
        tp_group=ps.get_tensor_model_parallel_group(),
        pp_group=ps.get_pipeline_model_parallel_group(),
        dp_group=ps.get_data_parallel_group(),
        mp_group=ps.get_model_parallel_group(),
        embedding_group=ps.get_embedding_group() if ps.is_rank_in_embedding_group() else None,
        pp_ranks=dist.get_process_group_ranks(ps.get_pipeline_model_parallel_group()),
    )
    expected = dp_coordinates(dist_ctx.rank, dist_ctx.world_size, (tp, pp))
    if (groups.dp_rank, groups.dp) != expected or (dist_ctx.dp_rank, dist_ctx.dp_size) != expected:
        raise RuntimeError(
            f"data-parallel coordinates disagree: megatron (rank {groups.dp_rank} of {groups.dp}), "
            f"dp_coordinates {expected}, DistContext ({dist_ctx.dp_rank} of {dist_ctx.dp_size})"
        )
    return groups


def _all_reduce(tensors: list[torch.Tensor], group, *, average: bool) -> None:
    """One flat all-reduce of ``tensors`` (gradients) over ``group``, in place (sum, or mean)."""
    size = dist.get_world_size(group)
    if size == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, group=group)
    if average:
        flat /= size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def _tp_summed(name: str, param: torch.nn.Parameter) -> bool:
    """Replicated over tensor-parallel ranks but each rank sees only part of its input, so the gradients
    are partial sums: Qwen3's q/k norms (each rank normalises its own heads) and, with sequence
    parallelism, the layer norms (each rank normalises its own tokens; tagged ``sequence_parallel``)."""
    return "q_layernorm" in name or "k_layernorm" in name or getattr(param, "sequence_parallel", False)


def reduce_model_parallel_grads(
    named: list[tuple[str, torch.nn.Parameter]],
    grads: list[torch.Tensor],
    groups: ParallelGroups,
    tied_names: tuple[str, ...],
) -> None:
    """The tensor/pipeline-parallel part of gradient finalisation, on ``grads`` (``.grad`` or megatron's
    ``.main_grad`` of each parameter in ``named``): tied embedding summed over first/last stage, partial
    sums over tensor-parallel ranks summed, the replicated vision tower averaged over them. Linear, so it
    commutes with the data-parallel reduction."""
    by_name = {n: g for (n, _), g in zip(named, grads)}
    if groups.embedding_group is not None:
        _all_reduce([by_name[n] for n in tied_names if n in by_name], groups.embedding_group, average=False)
    _all_reduce([g for (n, p), g in zip(named, grads) if _tp_summed(n, p)], groups.tp_group, average=False)
    replicated = [g for (n, _), g in zip(named, grads) if n.startswith("vision.")]
    _all_reduce(replicated, groups.tp_group, average=True)


def finalize_grads(model: torch.nn.Module, groups: ParallelGroups, tied_names: tuple[str, ...]) -> None:
    """Make this rank's gradients the data-parallel mean and the tensor-/pipeline-consistent ones.

    ``tied_names``: parameters holding the tied embedding on the first/last stage (summed over stages).
    A parameter no replica used this step (e.g. the vision tower on a text-only batch) ends with no
    gradient, so the optimizer skips it as it would in one process; one used anywhere gets the mean.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    used = torch.tensor([float(p.grad is not None) for _, p in named])
    if dist.get_world_size(groups.dp_group) > 1:
        dist.all_reduce(used, op=dist.ReduceOp.MAX, group=groups.dp_group)
    for _, p in named:
        if p.grad is None:  # still takes part in the collectives below
            p.grad = torch.zeros_like(p)
    grads = [p.grad for _, p in named]
    reduce_model_parallel_grads(named, grads, groups, tied_names)
    _all_reduce(grads, groups.dp_group, average=True)
    for (_, p), flag in zip(named, used.tolist()):
        if not flag:
            p.grad = None


def grad_norm(
    model: torch.nn.Module, groups: ParallelGroups, sharded: set[str], duplicates: tuple[str, ...]
) -> torch.Tensor:
    """Global L2 norm of the model's gradients, every parameter counted once over the replica's ranks.

    Tensor-parallel shards (``sharded`` names) count on every rank; replicated tensors only on
    tensor-parallel rank 0; ``duplicates`` (the last stage's copy of a tied embedding) never.
    """
    total = torch.zeros((), dtype=torch.float64)
    for name, p in model.named_parameters():
        if p.grad is None or name in duplicates:
            continue
        if name in sharded or groups.tp_rank == 0:
            total += p.grad.detach().double().pow(2).sum()
    if dist.get_world_size(groups.mp_group) > 1:
        dist.all_reduce(total, group=groups.mp_group)
    return total.sqrt()


def clip_grads(model: torch.nn.Module, norm: torch.Tensor, max_norm: float) -> None:
    """Scale gradients so their global norm is at most ``max_norm`` (torch's clip_grad_norm_ rule)."""
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0).to(torch.float32)
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(coef)
