"""One rank of the sequence-parallel parity tests (gloo, fp32).

``model`` mode: every rank holds the same micro-batches; the plain model and a sequence-parallel copy
(same weights) compute log-probs and the gradient of one loss; the SP gradients are averaged over all
ranks as FSDP would. The SP copy gets its media as the engine plans them (each rank only the pixel rows
of the frames it encodes; ``padded_full_pixels``: every rank the whole pixel input, which the sharded
tower slices itself). Rank 0 writes the largest differences and every rank's vision counters as JSON.

``engine`` mode: an FSDPEngine with engine.sequence_parallel_size=S takes one step on the trajectories of
its data-parallel rank; rank 0 saves the log-probs before the step and the full weights after it.

``cuda`` mode (the gpu test): nccl on CUDA, one process per GPU (world = min(2, GPUs); world 1 is a
pseudo-SP group of one rank, where the all-to-all is an identity that still runs nccl's kernel). Checks
the all-to-all against slicing the full tensor and Ulysses attention (forward and input gradients, GQA
and repeated KV heads) against sdpa on the full sequence; rank 0 writes the largest differences as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor
from vrl_fixtures import make_trajectories

from vrl.batch import collate
from vrl.distributed import init_distributed, shutdown
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.engines.packing import pack
from vrl.engines.sequence_parallel import parallelize_sequence
from vrl.engines.vision_sharding import SHARD_ATTR, local_patch_range
from vrl.models.loading import load_hf_model
from vrl.models.policy import ResponseLogProbs


def _loss(logp: torch.Tensor, mb) -> torch.Tensor:
    weights = torch.linspace(-1.0, 1.0, logp.numel()).view_as(logp)
    return (logp * weights * mb.token_mask).sum()


def model_mode(model: str, sp: int, out: str) -> None:
    ctx = init_distributed(sequence_parallel=sp)
    path = Path(model)
    plain = load_hf_model(path, dtype=torch.float32, device=ctx.device)
    plain.set_attn_implementation("sdpa")
    par = load_hf_model(path, dtype=torch.float32, device=ctx.device)
    par.set_attn_implementation("sdpa")
    parallelize_sequence(par, ctx)
    pad_id = int(plain.config.get_text_config().pad_token_id or 0)
    trajs = make_trajectories(path, per_prompt=2)
    distinct = list({id(t.prompt): t.prompt for t in trajs}.values())
    batches = {  # micro-batch, the prompts its vision tensors concatenate (None: no media plan)
        "padded": (collate(trajs[:6], pad_id), [t.prompt for t in trajs[:6]]),
        "padded_full_pixels": (collate(trajs[:6], pad_id), None),
        "packed": (pack(trajs, pad_id), [t.prompt for t in trajs]),
        "packed_shared": (pack(trajs, pad_id, share_prompts=True), distinct),
    }
    result: dict = {}
    shard = getattr(par.model.visual, SHARD_ATTR)
    split = lambda grid: local_patch_range(grid, ctx.sp_size, ctx.sp_rank)  # noqa: E731
    for name, (mb, prompts) in batches.items():
        before = (shard.units, shard.total_units)
        outs = {}
        pixel_rows = None
        for tag, m in (("plain", plain), ("sp", par)):
            m.zero_grad(set_to_none=True)
            policy = ResponseLogProbs(m)
            if tag == "sp" and prompts is not None:  # as the engine does: only this rank's pixel rows
                sp_mb = dataclasses.replace(mb, vision=dict(mb.vision))
                media = policy.vision_reuse.plan(sp_mb.vision, prompts, split)
                full = sum(int(v.shape[0]) for k, v in mb.vision.items() if k.startswith("pixel_values"))
                pixel_rows = {"local": sum(int(x.pixels.shape[0]) for x in media.values()), "full": full}
                logp, _ = policy(sp_mb, media=media)
            else:
                logp, _ = policy(mb)
            _loss(logp, mb).backward()
            grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
            if tag == "sp":
                for g in grads.values():  # FSDP's gradient mean over all DP × SP ranks
                    dist.all_reduce(g)
                    g /= ctx.world_size
            outs[tag] = (logp.detach(), grads)
        (lp, gp), (ls, gs) = outs["plain"], outs["sp"]
        result[name] = {
            "logp": float((lp - ls).abs().max()),
            "grad": max(float((gp[n] - gs[n]).abs().max()) for n in gp),
            "grad_scale": max(float(gp[n].abs().max()) for n in gp),
            "same_params": sorted(gp) == sorted(gs),
        }
        units = [None] * ctx.world_size
        local = {"units": shard.units - before[0], "total": shard.total_units - before[1]}
        dist.all_gather_object(units, local)
        result[name]["vision"] = units
        rows = [None] * ctx.world_size
        dist.all_gather_object(rows, pixel_rows)
        result[name]["pixel_rows"] = rows
    if ctx.is_main:
        Path(out).write_text(json.dumps(result))
    shutdown()


#: engine mode scales its loss down (and the saved gradients back up): AdamW's first step is
#: lr · g / (|g| + eps), a sign for |g| ≫ eps, so a gradient element at float-rounding level (~1e-9 at
#: scale 1) would move a weight by up to lr on one side and not the other. Scaled, rounding noise sits far
#: below eps (linear regime, negligible moves) while real gradients still give sign-like steps of lr.
LOSS_SCALE = 1e-4


def engine_mode(model: str, sp: int, out: str) -> None:
    ctx = init_distributed(sequence_parallel=sp)
    torch.manual_seed(0)
    cfg = EngineConfig(lr=1e-4, micro_batch_size=3, share_prompts=False, sequence_parallel_size=sp)
    eng = FSDPEngine(cfg, Path(model), ctx, total_steps=2)
    trajs = make_trajectories(Path(model), per_prompt=2)
    groups = sorted({t.group for t in trajs})
    mine = [t for t in trajs if groups.index(t.group) % ctx.dp_size == ctx.dp_rank]
    logp = eng.compute_logprobs(mine).logp
    grads: dict[str, torch.Tensor] = {}
    original = eng.optimizer.step

    def step(*args, **kwargs):
        for name, p in eng.policy.named_parameters():
            if p.grad is not None:
                g = p.grad
                grads[name] = (g.full_tensor() if isinstance(g, DTensor) else g).clone() / LOSS_SCALE
        return original(*args, **kwargs)

    eng.optimizer.step = step

    def loss_fn(lp, ent, mb):
        # a per-trajectory sum over this DP rank's tokens, scaled like the trainer's global normalisation
        adv = mb.advantages if mb.advantages.ndim == 2 else mb.advantages[:, None]
        return -(lp * adv * mb.token_mask).sum() * ctx.dp_size / 10.0 * LOSS_SCALE, {}

    eng.train_step(mine, loss_fn, need_entropy=False)
    weights = {}
    for name, p in eng.policy.named_parameters():
        weights[name] = (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
    if ctx.is_main:
        torch.save({"logp": logp, "grads": grads, "weights": weights}, out)
    shutdown()


def memory_mode(model: str, sp: int, out: str, length: int = 4096) -> None:
    """Bytes of activations autograd saves for backward on this rank (unique storages, parameters
    excluded) in one training forward of a ``length``-token text sequence."""
    ctx = init_distributed(sequence_parallel=sp)
    m = load_hf_model(Path(model), dtype=torch.float32, device=ctx.device)
    m.set_attn_implementation("sdpa")
    parallelize_sequence(m, ctx)
    params = {p.untyped_storage().data_ptr() for p in m.parameters()}
    seen: dict[int, int] = {}

    def pack_hook(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(10, 1000, (1, length), generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(pack_hook, lambda t: t):
        hidden = m.model(input_ids=ids, use_cache=False).last_hidden_state
    sizes = [None] * ctx.world_size
    dist.all_gather_object(sizes, sum(seen.values()))
    if ctx.is_main:
        Path(out).write_text(json.dumps({"sp": sp, "tokens": length, "saved_bytes_per_rank": sizes}))
    del hidden
    shutdown()


def cuda_mode(_model: str, world: int, out: str) -> None:
    import os

    import torch.nn.functional as F

    from vrl.engines.sequence_parallel import GROUP_ATTR, heads_to_seq, seq_to_heads, ulysses_attention

    rank = int(os.environ["RANK"])
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world, device_id=torch.device("cuda", rank))
    group = dist.new_group(list(range(world)))
    dev = torch.device("cuda", rank)
    gen = torch.Generator(device=dev).manual_seed(0)
    result: dict = {"world": world, "backend": dist.get_backend(group)}
    # all-to-all: a (B, H, T, D) tensor every rank builds the same; rank r holds tokens r·T/S..(r+1)·T/S
    full = torch.randn(2, 4, 8 * world, 16, device=dev, generator=gen)
    t = full.shape[2] // world
    local = full[:, :, rank * t : (rank + 1) * t].contiguous()
    heads = seq_to_heads(local, group)  # (B, H/S, T, D): this rank's heads, the full sequence
    h = full.shape[1] // world
    result["seq_to_heads"] = float((heads - full[:, rank * h : (rank + 1) * h]).abs().max())
    result["round_trip"] = float((heads_to_seq(heads, group) - local).abs().max())
    # attention: 4 query heads with 4, 2 and 1 KV heads (1 < S = 2: repeated) against sdpa on all tokens
    attn = torch.nn.Module()
    setattr(attn, GROUP_ATTR, group)
    for n_kv in (4, 2, 1):
        if n_kv % world and world % n_kv:
            continue
        q = torch.randn(1, 4, 16 * world, 32, device=dev, generator=gen, requires_grad=True)
        k = torch.randn(1, n_kv, 16 * world, 32, device=dev, generator=gen, requires_grad=True)
        v = torch.randn(1, n_kv, 16 * world, 32, device=dev, generator=gen, requires_grad=True)
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=n_kv != 4)  # (B, H, T, D)
        ref.square().sum().backward()
        ref_grads = [x.grad.clone() for x in (q, k, v)]
        for x in (q, k, v):
            x.grad = None
        t = q.shape[2] // world
        shard = [x[:, :, rank * t : (rank + 1) * t] for x in (q, k, v)]
        got, _ = ulysses_attention(attn, *shard, None)  # (B, T/S, H, D)
        got.square().sum().backward()
        grads = [x.grad.clone() for x in (q, k, v)]
        for g in grads:  # each rank's backward covers its own slice of the inputs: sum the ranks
            dist.all_reduce(g)
        result[f"attention_kv{n_kv}"] = float(
            (got - ref.transpose(1, 2)[:, rank * t : (rank + 1) * t]).detach().abs().max()
        )
        result[f"grad_kv{n_kv}"] = max(float((a - b).abs().max()) for a, b in zip(grads, ref_grads))
    result.update(_blocked_attention_check(attn, world, rank, dev, gen))
    torch.cuda.synchronize()
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


def _blocked_attention_check(attn, world: int, rank: int, dev, gen) -> dict:
    """Ulysses attention over a packed row's blocks (a shared prompt with two responses, then a plain
    sequence) against sdpa on the full sequence under the equivalent dense mask."""
    import types

    import torch.nn.functional as F

    from vrl.engines.packing import attention_blocks
    from vrl.engines.sequence_parallel import SHARD_ATTR, ulysses_attention

    prompt, responses, plain = 12, [5, 3], 8
    pos = [*range(prompt), *(p for r in responses for p in range(prompt, prompt + r)), *range(plain)]
    pad = (-len(pos)) % world
    pos += [pos[-1] + 1 + i for i in range(pad)]  # padding continues the last sequence, as the pre-hook does
    t = len(pos)
    blocks = attention_blocks(torch.tensor(pos, device=dev))
    dense = torch.zeros(t, t, dtype=torch.bool, device=dev)
    for a, pb, e, mask in blocks:
        dense[a:pb, a:pb] = torch.ones(pb - a, pb - a, dtype=torch.bool, device=dev).tril()
        if mask is not None:
            dense[pb:e, a:e] = mask[0, 0]
    q = torch.randn(1, 4, t, 32, device=dev, generator=gen, requires_grad=True)
    k = torch.randn(1, 2, t, 32, device=dev, generator=gen, requires_grad=True)
    v = torch.randn(1, 2, t, 32, device=dev, generator=gen, requires_grad=True)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=dense, enable_gqa=True)
    ref.square().sum().backward()
    ref_grads = [x.grad.clone() for x in (q, k, v)]
    for x in (q, k, v):
        x.grad = None
    setattr(attn, SHARD_ATTR, types.SimpleNamespace(blocks=blocks))
    n = t // world
    shard = [x[:, :, rank * n : (rank + 1) * n] for x in (q, k, v)]
    got, _ = ulysses_attention(attn, *shard, None)
    got.square().sum().backward()
    grads = [x.grad.clone() for x in (q, k, v)]
    for g in grads:
        dist.all_reduce(g)
    delattr(attn, SHARD_ATTR)
    return {
        "blocked_attention": float(
            (got - ref.transpose(1, 2)[:, rank * n : (rank + 1) * n]).detach().abs().max()
        ),
        "blocked_grad": max(float((a - b).abs().max()) for a, b in zip(grads, ref_grads)),
    }


if __name__ == "__main__":
    mode, model_path, size, path = sys.argv[1:5]
    modes = {"model": model_mode, "engine": engine_mode, "memory": memory_mode, "cuda": cuda_mode}
    modes[mode](model_path, int(size), path)
