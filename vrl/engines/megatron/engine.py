"""The ``megatron`` training engine: Megatron-Core tensor × pipeline parallelism, data parallel over the rest.

Each rank holds one pipeline stage of the policy (:class:`~vrl.engines.megatron.model.QwenVLStage`), its
tensor-parallel shard of it, and a plain AdamW over exactly those tensors (Adam is element-wise, so the
sharded update equals the unsharded one), or with ``engine.distributed_optimizer`` megatron's
distributed optimizer over its 1/DP slice (:mod:`dist_optimizer`). Gradients are made consistent by
:mod:`parallel` (data-parallel mean, tied-embedding sum, replicated vision tower) and clipped by the global
norm over the replica.
Checkpoints are written per (tensor, pipeline) shard and load into any layout (:mod:`checkpoint`); the HF
export (and the weights streamed to the rollout engine after every update) is layout-free too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from vrl.batch import MicroBatch, Trajectory, collate
from vrl.distributed import DistContext
from vrl.engines.base import LogProbs, LossFn, TrainingEngine
from vrl.engines.config import EngineConfig
from vrl.engines.lr_schedule import lr_scheduler
from vrl.engines.megatron import bridge, checkpoint
from vrl.engines.megatron.dist_optimizer import DistributedOptimizer
from vrl.engines.megatron.hf_io import HFCheckpoint, export_checkpoint
from vrl.engines.megatron.layout import check_layout
from vrl.engines.megatron.model import QwenVLStage
from vrl.engines.megatron.parallel import clip_grads, finalize_grads, grad_norm, init_parallel
from vrl.engines.megatron.schedule import PipelineRunner
from vrl.engines.megatron.spec import DecoderSpec
from vrl.engines.megatron.weights import build_stage, iter_hf_buckets, iter_hf_weights, sharded_names
from vrl.engines.memory import StorageCounter, gradient_bytes, state_tensors
from vrl.log import get_logger
from vrl.safe_load import load_tensors

logger = get_logger(__name__)

TIED = ("gpt.embedding.word_embeddings.weight", "gpt.output_layer.weight")


def recompute_mode(cfg: EngineConfig) -> str:
    """``engine.recompute``, with ``engine.gradient_checkpointing`` meaning full recomputation."""
    return "full" if cfg.gradient_checkpointing and cfg.recompute == "none" else cfg.recompute


def check_supported(cfg: EngineConfig, spec: DecoderSpec, device: torch.device) -> None:
    """Refuse combinations the engine cannot run exactly, with the reason."""
    on_gpu = device.type == "cuda"
    if recompute_mode(cfg) == "full" and spec.num_deepstack:
        raise ValueError(
            "full activation recomputation (engine.recompute=full or engine.gradient_checkpointing) is not "
            "supported with Qwen3-VL DeepStack in the megatron engine (the recomputed layers would miss the "
            "vision features); engine.recompute=selective is"
        )
    if cfg.sequence_parallel and cfg.tensor_parallel_size < 2:
        raise ValueError("engine.sequence_parallel=true needs engine.tensor_parallel_size >= 2")
    if spec.attention_dropout and not on_gpu:
        raise ValueError(
            f"attention_dropout={spec.attention_dropout} in the checkpoint: the megatron engine's CPU path "
            "keeps no RNG state for dropout (set it to 0 in config.json, as RL fine-tuning does)"
        )
    if cfg.param_dtype == "bfloat16" and not on_gpu:
        raise ValueError(
            "engine.param_dtype=bfloat16 needs a GPU with engine=megatron: megatron-core's linear layers "
            "only autocast on CUDA (their backward mixes bfloat16 gradients with float32 weights on CPU)"
        )


class MegatronEngine(TrainingEngine):
    name = "megatron"

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
        self.dist = dist_ctx
        self.ckpt = HFCheckpoint(model_path)
        spec = self.ckpt.spec
        tp, pp = cfg.tensor_parallel_size, cfg.pipeline_parallel_size
        check_layout(spec, tp, pp, dist_ctx.world_size)
        check_supported(cfg, spec, dist_ctx.device)
        self.groups = init_parallel(dist_ctx, tp, pp)
        # bfloat16 parameters need fp32 main weights, which only the distributed optimizer keeps; the plain
        # optimizer's bfloat16 is autocast over fp32 parameters
        bf16_params = cfg.distributed_optimizer and cfg.param_dtype == "bfloat16"
        dtype = torch.bfloat16 if bf16_params else torch.float32
        self.policy = build_stage(
            self.ckpt,
            self.groups,
            recompute=recompute_mode(cfg),
            sequence_parallel=cfg.sequence_parallel,
            device=dist_ctx.device,
            dtype=dtype,
        )
        self.reference: QwenVLStage | None = None
        if with_reference:
            self.reference = build_stage(
                self.ckpt,
                self.groups,
                sequence_parallel=cfg.sequence_parallel,
                device=dist_ctx.device,
                dtype=dtype,
            ).eval()
            self.reference.requires_grad_(False)
        pad = self.ckpt.config.get_text_config().pad_token_id
        autocast = torch.bfloat16 if cfg.param_dtype == "bfloat16" and not bf16_params else None
        self.runner = PipelineRunner(
            self.groups,
            self.ckpt.skeleton.model,
            int(pad or 0),
            cfg.num_microbatches,
            temperature,
            autocast,
            dist_ctx.device,
            sequence_multiple=tp if cfg.sequence_parallel else 1,
        )
        self.zero: DistributedOptimizer | None = None
        if cfg.distributed_optimizer:
            self.zero = DistributedOptimizer(self.policy, self.groups, cfg, bf16=bf16_params)
            self.optimizer = self.zero.torch_optimizer
        else:
            self.optimizer = torch.optim.AdamW(
                [p for p in self.policy.parameters() if p.requires_grad],
                lr=cfg.lr,
                betas=tuple(cfg.betas),
                weight_decay=cfg.weight_decay,
            )
        self.scheduler = lr_scheduler(self.optimizer, cfg, total_steps, sft_steps, sft_lr)
        dup = spec.tied_embeddings and pp > 1 and self.groups.last_stage
        self._duplicates = ("gpt.output_layer.weight",) if dup else ()
        self._sharded = sharded_names(self.ckpt, self.groups)
        logger.info(
            "megatron engine: TP=%d PP=%d DP=%d%s%s%s, rank %d holds stage %d (%d parameters)",
            tp,
            pp,
            self.groups.dp,
            " SP" if cfg.sequence_parallel else "",
            " distributed optimizer" if cfg.distributed_optimizer else "",
            f" recompute={recompute_mode(cfg)}" if recompute_mode(cfg) != "none" else "",
            dist_ctx.rank,
            self.groups.pp_rank,
            sum(p.numel() for p in self.policy.parameters()),
        )

    # ---- batches ---------------------------------------------------------------------------------------
    def _micro_batches(self, trajs: list[Trajectory]) -> list[MicroBatch]:
        size = self.cfg.micro_batch_size
        return [collate(trajs[i : i + size], self.runner.pad_id) for i in range(0, len(trajs), size)]

    # ---- TrainingEngine --------------------------------------------------------------------------------
    def compute_logprobs(
        self, trajs: list[Trajectory], *, reference: bool = False, with_entropy: bool = False
    ) -> LogProbs:
        module = self.reference if reference else self.policy
        if module is None:
            raise ValueError(
                "reference log-probs requested but the engine was built without a reference model"
            )
        module.eval()
        logps: list[torch.Tensor] = []
        ents: list[torch.Tensor] = []
        for call in self.runner.calls(self._micro_batches(trajs)):
            for item, (logp, ent) in zip(call, self.runner.logprobs(module, call, with_entropy)):
                for i in range(item.mb.size):
                    n = int(item.mb.response_lens[i])
                    logps.append(logp[i, :n].float().cpu())
                    if ent is not None:
                        ents.append(ent[i, :n].float().cpu())
        return LogProbs(logps, ents if with_entropy else None)

    def train_step(self, trajs: list[Trajectory], loss_fn: LossFn, *, need_entropy: bool) -> dict[str, float]:
        self.policy.train()
        if self.zero is not None:
            self.zero.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        weights: dict[str, float] = {}
        mbs = self._micro_batches(trajs)
        for call in self.runner.calls(mbs):
            for metrics, rows in self.runner.train(self.policy, call, loss_fn, need_entropy):
                for k, v in metrics.items():
                    totals[k] = totals.get(k, 0.0) + float(v) * rows
                    weights[k] = weights.get(k, 0.0) + rows
        tied = TIED if self.ckpt.spec.tied_embeddings else ()
        if self.zero is not None:
            norm = self.zero.step(tied)
        else:
            finalize_grads(self.policy, self.groups, tied)
            norm = grad_norm(self.policy, self.groups, self._sharded, self._duplicates)
            if self.cfg.grad_clip > 0:
                clip_grads(self.policy, norm, self.cfg.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        lr = self.lr
        self.scheduler.step()
        out = {k: totals[k] / weights[k] for k in totals}
        out.update(grad_norm=float(norm), lr=lr, num_micro_batches=float(len(mbs)))
        return out

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def rollout_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        return iter_hf_weights(self.policy, self.ckpt, self.groups)

    def rollout_weight_buckets(self, bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
        return iter_hf_buckets(self.policy, self.ckpt, self.groups, bucket_bytes)

    def memory_breakdown(self) -> dict[str, int]:
        counter = StorageCounter()
        modules = [self.policy] + ([self.reference] if self.reference is not None else [])
        params = counter.add(p for module in modules for p in module.parameters())
        if self.zero is not None:  # persistent fp32 gradient buffers, this rank's slice of the state
            return {"params": params, **self.zero.memory(counter)}
        return {
            "params": params,
            "grads": gradient_bytes(self.policy.parameters()),
            "optimizer": counter.add(state_tensors(self.optimizer)),
            "main_weights": 0,
        }

    # ---- persistence -----------------------------------------------------------------------------------
    def _saved(self, kind: str, param: torch.nn.Parameter) -> torch.Tensor | None:
        """``param``'s full-shape fp32 weight / Adam state (or 0-d step) as a checkpoint stores it, None for
        optimizer state the plain optimizer never created. Collective with the distributed optimizer."""
        if self.zero is not None:
            return self.zero.full_tensor(param, "param" if kind == "model" else kind)
        if kind == "model":
            return param.detach().float()
        state = self.optimizer.state.get(param, {})
        return state[kind].detach().float() if kind in state else None

    def save(self, path: Path) -> None:
        """One safetensors file per kind of state and (TP, PP) shard (DP rank 0 writes; a distributed
        optimizer's slices are assembled first), then the schedule and the layout (:mod:`checkpoint`)."""
        path = Path(path)
        if self.dist.is_main:
            path.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        g = self.groups
        named = list(self.policy.named_parameters())
        for kind in checkpoint.KINDS:
            # to host memory as produced: one kind of this shard at a time (4 bytes per parameter)
            tensors = {n: t.cpu() for n, p in named if (t := self._saved(kind, p)) is not None}
            if g.dp_rank == 0:
                checkpoint.write_shard(path, kind, g.tp_rank, g.pp_rank, tensors)
            del tensors
        self.dist.barrier()
        if self.dist.is_main:
            checkpoint.write_manifest(
                path, g.tp, g.pp, g.dp, {"scheduler": self.scheduler.state_dict(), "lr": self.lr}
            )
        self.dist.barrier()

    def load(self, path: Path) -> None:
        """Restore a checkpoint written at any TP × PP × DP layout, with either optimizer (resharded on load
        through the HF mapping when the layout differs)."""
        path = Path(path)
        if list(path.glob("mp_rank_*.pt")):
            self._load_v1(path)
            return
        reader = checkpoint.CheckpointReader(path, self.ckpt.spec)
        g = self.groups
        rules = {"gpt." + n: r for n, r in bridge.stage_rules(self.ckpt.spec, g.pp, g.pp_rank).items()}
        if self.zero is not None:
            self.zero.ensure_state()
        for name, param in self.policy.named_parameters():
            state = {
                kind: reader.tensor(kind, name, rules.get(name), g.tp_rank, g.tp, g.pp_rank, g.pp)
                for kind in checkpoint.KINDS
            }
            if state["model"] is None:
                raise ValueError(f"checkpoint {path} has no weights for {name}")
            if state["model"].shape != param.shape:
                raise ValueError(
                    f"{name}: checkpoint shape {tuple(state['model'].shape)} != {tuple(param.shape)}"
                )
            state = {k: v.to(param.device) if v is not None else None for k, v in state.items()}
            if self.zero is not None:
                self.zero.load_full(param, {"param": state.pop("model"), **state})
                continue
            with torch.no_grad():
                param.copy_(state["model"])
            if any(state[k] is None for k in ("exp_avg", "exp_avg_sq", "step")):
                self.optimizer.state.pop(param, None)  # never stepped: AdamW starts it fresh
            else:
                self.optimizer.state[param] = {
                    "step": state["step"].float().cpu().reshape(()),
                    "exp_avg": state["exp_avg"].to(param.dtype),
                    "exp_avg_sq": state["exp_avg_sq"].to(param.dtype),
                }
        self.scheduler.load_state_dict(reader.state["scheduler"])
        for group in self.optimizer.param_groups:
            group["lr"] = reader.lr

    def _load_v1(self, path: Path) -> None:
        """The first checkpoint format (one weights-only torch file per (TP, PP) rank): same layout and the
        plain optimizer only."""
        saved = json.loads((path / "layout.json").read_text())
        here = {"tensor_parallel_size": self.groups.tp, "pipeline_parallel_size": self.groups.pp}
        if saved != here or self.zero is not None:
            raise ValueError(
                f"checkpoint {path} is in the first megatron format (written with layout {saved} and the plain "
                f"optimizer), which loads only into that layout without engine.distributed_optimizer; this run "
                f"uses {here}: resume with those settings, or start a new run from its hf/ export"
            )
        shard = path / f"mp_rank_{self.groups.tp_rank:02d}_{self.groups.pp_rank:03d}.pt"
        state = load_tensors(shard, map_location=self.dist.device)  # refuses crafted files
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def export_hf(self, path: Path) -> None:
        path = Path(path)
        state = {}
        for name, tensor in iter_hf_weights(self.policy, self.ckpt, self.groups):
            if self.dist.is_main:
                state[name] = tensor
        if self.dist.is_main:
            export_checkpoint(self.ckpt, state, path)
        self.dist.barrier()
