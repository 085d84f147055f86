"""The ``fsdp`` training engine: torch FSDP2 (``fully_shard``) data parallelism, gloo on CPU, nccl on GPU.

Every decoder layer and vision block is its own FSDP unit; :class:`ResponseLogProbs` (holding the
embeddings, LM head and remaining modules) is the root. Ranks may hold different numbers of
trajectories (dynamic sampling, uneven groups): FSDP's collectives need the same number of forward and
backward passes everywhere, so ranks agree on the micro-batch count and pad with zero-weight passes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from vrl.batch import MicroBatch, Trajectory, collate
from vrl.distributed import DistContext
from vrl.engines.base import LogProbs, LossFn, TrainingEngine
from vrl.engines.buckets import plan_buckets
from vrl.engines.config import EngineConfig
from vrl.engines.dcp_load import load_dcp
from vrl.engines.lr_schedule import lr_scheduler
from vrl.engines.memory import StorageCounter, gradient_bytes, state_tensors
from vrl.engines.microbatch import Layout, agree_on_count, plan_micro_batches
from vrl.engines.packing import pack, use_varlen_sdpa
from vrl.engines.sequence_parallel import parallelize_sequence
from vrl.engines.vision_sharding import local_patch_range
from vrl.log import get_logger
from vrl.models.loading import copy_processor_files, load_hf_model
from vrl.models.policy import ResponseLogProbs, decoder_layers
from vrl.models.vision_reuse import MediaInputs

logger = get_logger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _shard(
    model: torch.nn.Module, wrapper: torch.nn.Module, dist_ctx: DistContext, cfg: EngineConfig
) -> None:
    """One FSDP2 unit per decoder layer; the root unit holds the vision tower, embeddings and LM head.

    The vision tower runs zero, one or two times per forward depending on the media in a micro-batch
    (text only, images or videos, both), so it cannot be split into units of its own: ranks would issue
    different numbers of all-gathers. A single fp32 process is left unsharded (nothing to shard, and on
    CPU the per-layer copies would dominate a small model's step).
    """
    if dist_ctx.world_size == 1 and cfg.param_dtype == "float32":
        return
    mp = MixedPrecisionPolicy(param_dtype=DTYPES[cfg.param_dtype], reduce_dtype=torch.float32)
    for block in decoder_layers(model):
        fully_shard(block, mesh=dist_ctx.mesh, mp_policy=mp)
    fully_shard(wrapper, mesh=dist_ctx.mesh, mp_policy=mp)


def _with_attention(model: torch.nn.Module, cfg: EngineConfig) -> torch.nn.Module:
    """``model`` (language model and vision tower) set to ``engine.attn_implementation``; packed under
    sdpa, the language model runs sdpa per packed sequence (:func:`vrl.engines.packing.varlen_sdpa`)."""
    if model.config._attn_implementation != cfg.attn_implementation:
        model.set_attn_implementation(cfg.attn_implementation)
    if cfg.packing and cfg.attn_implementation == "sdpa":
        use_varlen_sdpa(model)
    return model


class FSDPEngine(TrainingEngine):
    name = "fsdp"

    def __init__(
        self,
        cfg: EngineConfig,
        model_path: Path,
        dist_ctx: DistContext,
        *,
        total_steps: int,
        sft_steps: int = 0,
        sft_lr: float = 0.0,
        temperature: float = 1.0,
        with_reference: bool = False,
    ) -> None:
        self.cfg = cfg
        self.model_path = Path(model_path)
        self.dist = dist_ctx
        model = load_hf_model(self.model_path, dtype=torch.float32, device=dist_ctx.device)
        model = _with_attention(model, cfg)
        parallelize_sequence(model, dist_ctx)  # no-op at sp_size 1
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.hf_model = model
        self.pad_id = int(model.config.get_text_config().pad_token_id or 0)
        self.policy = ResponseLogProbs(model, temperature, touch_vision=dist_ctx.world_size > 1)
        _shard(model, self.policy, dist_ctx, cfg)
        self.reference: ResponseLogProbs | None = None
        if with_reference:
            ref = load_hf_model(self.model_path, dtype=torch.float32, device=dist_ctx.device)
            ref = parallelize_sequence(_with_attention(ref, cfg), dist_ctx).eval()
            ref.requires_grad_(False)
            self.reference = ResponseLogProbs(ref, temperature)
            _shard(ref, self.reference, dist_ctx, cfg)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.policy.parameters() if p.requires_grad],
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay,
        )
        self.scheduler = lr_scheduler(self.optimizer, cfg, total_steps, sft_steps, sft_lr)

    # ---- micro-batching -------------------------------------------------------------------------
    def _split(self, trajs: list[Trajectory], training: bool) -> tuple[list[list[int]], int]:
        """Micro-batches as index lists into ``trajs`` (empty: a zero-weight pass), the same number on
        every rank (collective), and how many are not empty.

        ``engine.max_tokens_per_micro_batch`` > 0: token budget (:mod:`vrl.engines.microbatch`); else
        consecutive slices of ``micro_batch_size``, padded to the largest count over ranks."""
        budget = self.cfg.max_tokens_per_micro_batch
        if budget > 0:
            # the padded shared-prompt pass falls back to full sequences under gradient checkpointing
            share = self.cfg.share_prompts and (
                self.cfg.packing or not (training and self.cfg.gradient_checkpointing)
            )
            layout = Layout(packing=self.cfg.packing, share_prompts=share)
            plan = agree_on_count(
                lambda count: plan_micro_batches(trajs, budget, layout, count), self.dist.world_size
            )
        else:
            size = self.cfg.micro_batch_size
            plan = [list(range(i, min(i + size, len(trajs)))) for i in range(0, len(trajs), size)]
            count = torch.tensor([len(plan)], dtype=torch.long)
            if self.dist.world_size > 1:
                dist.all_reduce(count, op=dist.ReduceOp.MAX)
            plan += [[] for _ in range(int(count.item()) - len(plan))]
        return plan, sum(1 for indices in plan if indices)

    def _collate(
        self, trajs: list[Trajectory], module: ResponseLogProbs
    ) -> tuple[MicroBatch, dict[str, MediaInputs]]:
        """A padded or (``engine.packing``) packed micro-batch on this rank's device, and its media as
        ``module`` will encode them (:mod:`vrl.models.vision_reuse`: each prompt once; under sequence
        parallelism only this rank's part of the pixels reaches the device)."""
        build = pack if self.cfg.packing else collate
        mb = build(trajs, self.pad_id, self.cfg.share_prompts)
        # the vision tensors a forward reads, and the prompts they concatenate (vrl.batch / packing)
        distinct = list({id(t.prompt): t.prompt for t in trajs}.values())
        if module.uses_shared_pass(mb):
            assert mb.shared is not None
            vision, prompts = mb.shared.vision, distinct
            for key in ("pixel_values", "pixel_values_videos"):  # the rows' copies are never read
                mb.vision.pop(key, None)
        elif mb.packed is not None and mb.packed.shared:
            vision, prompts = mb.vision, distinct
        else:
            vision, prompts = mb.vision, [t.prompt for t in trajs]
        split = None
        if self.dist.sp_size > 1:
            s, r = self.dist.sp_size, self.dist.sp_rank
            split = lambda grid: local_patch_range(grid, s, r)  # noqa: E731
        media = module.vision_reuse.plan(vision, prompts, split)
        device = self.dist.device
        return mb.to(device), {k: m.to(device) for k, m in media.items()}

    def _dummy(
        self, template: list[Trajectory], module: ResponseLogProbs
    ) -> tuple[MicroBatch, dict[str, MediaInputs]]:
        """A one-sample batch for ranks with fewer micro-batches (its loss is multiplied by 0)."""
        if not template:
            raise RuntimeError(
                "a rank without trajectories cannot pad FSDP passes; give every rank >= 1 trajectory"
            )
        return self._collate(template[:1], module)

    # ---- TrainingEngine ---------------------------------------------------------------------------
    @torch.no_grad()
    def compute_logprobs(
        self, trajs: list[Trajectory], *, reference: bool = False, with_entropy: bool = False
    ) -> LogProbs:
        module = self.reference if reference else self.policy
        if module is None:
            raise ValueError(
                "reference log-probs requested but the engine was built without a reference model"
            )
        module.eval()
        plan, _ = self._split(trajs, training=False)
        logps: list[torch.Tensor] = [torch.empty(0)] * len(trajs)
        ents: list[torch.Tensor] = [torch.empty(0)] * len(trajs)
        with module.vision_reuse.caching():  # one pass, fixed weights: each prompt's media encoded once
            for indices in plan:
                if not indices:
                    mb, media = self._dummy(trajs, module)
                    module(mb, media=media)
                    continue
                mb, media = self._collate([trajs[i] for i in indices], module)
                logp, ent = module(mb, with_entropy=with_entropy, media=media)
                for row, i in enumerate(indices):
                    n = int(mb.response_lens[row])
                    logps[i] = logp[row, :n].float().cpu()
                    if ent is not None:
                        ents[i] = ent[row, :n].float().cpu()
        return LogProbs(logps, ents if with_entropy else None)

    def train_step(self, trajs: list[Trajectory], loss_fn: LossFn, *, need_entropy: bool) -> dict[str, float]:
        self.policy.train()
        plan, local = self._split(trajs, training=True)
        totals: dict[str, float] = {}
        weights: dict[str, float] = {}
        for indices in plan:
            real = bool(indices)
            if real:
                mb, media = self._collate([trajs[i] for i in indices], self.policy)
            else:
                mb, media = self._dummy(trajs, self.policy)
            logp, ent = self.policy(mb, with_entropy=need_entropy, media=media)
            loss, metrics = loss_fn(logp, ent, mb)
            (loss if real else loss * 0.0).backward()
            if real:
                for k, v in metrics.items():
                    totals[k] = totals.get(k, 0.0) + v * mb.size
                    weights[k] = weights.get(k, 0.0) + mb.size
        grad_norm = self._clip()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.lr
        self.scheduler.step()
        out = {k: totals[k] / weights[k] for k in totals}
        out.update(grad_norm=grad_norm, lr=lr, num_micro_batches=float(local))
        return out

    def _clip(self) -> float:
        params = [p for p in self.policy.parameters() if p.grad is not None]
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if isinstance(norm, DTensor):
            norm = norm.full_tensor()
        return float(norm)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def rollout_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, tensor in self.hf_model.state_dict().items():
            full = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
            yield name, full.detach()

    def rollout_weight_buckets(self, bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
        state = self.hf_model.state_dict()
        names = list(state)
        sizes = [state[n].numel() * state[n].element_size() for n in names]  # global sizes for DTensors
        full = lambda t: (t.full_tensor() if isinstance(t, DTensor) else t).detach()  # noqa: E731
        for bucket in plan_buckets(sizes, bucket_bytes):  # each full_tensor() is an all-gather
            yield [(names[i], full(state[names[i]])) for i in bucket]

    def memory_breakdown(self) -> dict[str, int]:
        """Local shards of the sharded fp32 parameters (they are the masters: no main weights); bf16
        mixed precision's unsharded copies are transient (per FSDP unit, freed after use) and not counted."""
        counter = StorageCounter()
        modules = [self.policy] + ([self.reference] if self.reference is not None else [])
        params = counter.add(p for module in modules for p in module.parameters())
        grads = gradient_bytes(self.policy.parameters())
        return {
            "params": params,
            "grads": grads,
            "optimizer": counter.add(state_tensors(self.optimizer)),
            "main_weights": 0,
        }

    # ---- persistence ------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "model": get_model_state_dict(self.hf_model),
            "optim": get_optimizer_state_dict(self.policy, self.optimizer),
        }

    def save(self, path: Path) -> None:
        path = Path(path)
        dcp.save(self._state(), checkpoint_id=str(path / "dcp"))
        if self.dist.is_main:
            (path / "scheduler.json").write_text(json.dumps(self.scheduler.state_dict()))

    def load(self, path: Path) -> None:
        path = Path(path)
        state = self._state()
        load_dcp(state, path / "dcp")  # never runs code from the files (a crafted checkpoint is refused)
        set_model_state_dict(self.hf_model, state["model"])
        set_optimizer_state_dict(self.policy, self.optimizer, state["optim"])
        self.scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text()))

    def export_hf(self, path: Path) -> None:
        path = Path(path)
        full = get_model_state_dict(
            self.hf_model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        if self.dist.is_main:
            tmp = path.with_name(path.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            self.hf_model.save_pretrained(tmp, state_dict=full)
            copy_processor_files(self.model_path, tmp)
            shutil.rmtree(path, ignore_errors=True)
            tmp.rename(path)
        self.dist.barrier()
