"""Megatron-Core's distributed optimizer (ZeRO-1) around one pipeline stage: ``engine.distributed_optimizer``.

Why: the plain engine keeps fp32 weights, fp32 gradients and AdamW's two moments on every data-parallel
rank (16 bytes per parameter of a rank's TP/PP shard). Megatron's ``DistributedDataParallel`` puts all
gradients in one contiguous fp32 buffer that is reduce-scattered over the data-parallel group, and its
``DistributedOptimizer`` keeps the fp32 main weights and Adam moments only for this rank's 1/DP slice of
that buffer, steps them, and all-gathers the updated parameters. Bytes per parameter (d = DP):

- fp32 parameters (CPU, or GPU without bf16): 4 param + 4 grad + 8/d Adam; the fp32 parameters are
  their own main weights (8 + 8/d, vs 16);
- bf16 parameters on GPUs (``engine.param_dtype=bfloat16``): 2 param + 4 fp32 grad + 4/d fp32 main
  weights + 8/d Adam (6 + 12/d, vs 16 for the plain engine's autocast over fp32 parameters).

The same megatron classes run on both: on the CPU through :func:`compat.cpu_optimizer`. Gradients are the
data-parallel mean (DDP scales by 1/DP before its reduce-scatter); the tensor/pipeline-parallel part of
the reduction (:func:`parallel.reduce_model_parallel_grads`) runs on the fp32 ``main_grad`` buffers before
it. Clipping is megatron's, on a global norm over all ranks (each parameter counted once) accumulated in
fp64 as in the plain path.

One difference from the plain optimizer: a parameter no rank used in a step (the vision tower on a
text-only mini-batch) gets a zero gradient instead of none, so Adam still moves it by its momentum, as in
Megatron-LM (and in the FSDP engine with more than one rank).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.distributed as dist

from vrl.engines.config import EngineConfig
from vrl.engines.megatron import compat
from vrl.engines.megatron.parallel import ParallelGroups, reduce_model_parallel_grads
from vrl.engines.memory import StorageCounter, state_tensors


class DistributedOptimizer:
    """DDP + distributed AdamW over ``stage`` (its parameters become views of megatron's buffers)."""

    def __init__(
        self, stage: torch.nn.Module, groups: ParallelGroups, cfg: EngineConfig, *, bf16: bool
    ) -> None:
        from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer

        self.stage = stage
        self.stage_device = next(stage.parameters()).device
        self.groups = groups
        # the model config asks for per-token losses (so the schedule never rescales ours); DDP reads the
        # same flag to skip its 1/DP pre-scaling: give it a copy without it, so gradients are the DP mean
        model_config = copy.copy(stage.config)
        model_config.calculate_per_token_loss = False
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True,
            overlap_grad_reduce=False,
            overlap_param_gather=False,
            use_distributed_optimizer=True,
            check_for_nan_in_grad=False,
        )
        opt_config = OptimizerConfig(
            optimizer="adam",
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            adam_beta1=cfg.betas[0],
            adam_beta2=cfg.betas[1],
            adam_eps=1e-8,
            clip_grad=cfg.grad_clip if cfg.grad_clip > 0 else math.inf,
            bf16=bf16,
            params_dtype=torch.bfloat16 if bf16 else torch.float32,
            use_distributed_optimizer=True,
        )
        with compat.cpu_optimizer():
            self.ddp = DistributedDataParallel(model_config, ddp_config, stage)
            # no overrides: every parameter in one group with the same weight decay, like torch's AdamW
            # (megatron's default exempts biases and norms)
            self.megatron = get_megatron_optimizer(opt_config, [self.ddp], config_overrides={})
        (self.inner,) = [opt for opt in self.megatron.chained_optimizers]
        self.megatron.get_grad_norm = self._grad_norm  # megatron's own sums in fp32
        self.torch_optimizer: torch.optim.Optimizer = self.inner.optimizer
        """AdamW over this rank's fp32 main-weight shards (the LR scheduler drives its ``lr``)."""
        self._names = [(n, p) for n, p in stage.named_parameters() if p.requires_grad]

    def zero_grad(self) -> None:
        """Clear the gradient buffers before a step's first backward."""
        self.ddp.zero_grad_buffer()
        self.megatron.zero_grad()

    def step(self, tied_names: tuple[str, ...]) -> float:
        """Finish the gradients (TP/PP reductions, DP reduce-scatter), clip, update this rank's shard and
        all-gather the parameters. Returns the global gradient norm before clipping."""
        grads = [p.main_grad for _, p in self._names]
        reduce_model_parallel_grads(self._names, grads, self.groups, tied_names)
        with compat.cpu_optimizer():
            self.ddp.finish_grad_sync()
            ok, norm, _ = self.megatron.step()
        if not ok:
            raise RuntimeError("megatron's optimizer skipped the update (non-finite gradients)")
        return float(norm)

    @torch.no_grad()
    def _grad_norm(self) -> float:
        """Megatron's global gradient norm (its choice of gradients: this rank's slices, tensor-parallel
        duplicates and the tied embedding's copy left out), accumulated in fp64 like the plain path's, so
        both optimizers log the same ``grad_norm`` and clip alike (megatron's fp32 sum differs by ~1e-5)."""
        grads = self.inner.get_main_grads_for_grad_norm()
        total = torch.zeros((), dtype=torch.float64, device=self.stage_device)
        for g in grads:
            total += torch.linalg.vector_norm(g, 2, dtype=torch.float64) ** 2
        dist.all_reduce(total, group=self.inner.get_grad_stats_parallel_group())
        return float(total.sqrt())

    # ---- per-parameter state, for layout-independent checkpoints ---------------------------------------
    def _local(self, param: torch.nn.Parameter) -> tuple[int, int, dict[str, torch.Tensor]] | None:
        """(start, end) of this rank's slice of ``param`` (flattened) and its main weight / Adam state
        there, or None when the slice is empty."""
        if param not in self.inner.model_param_group_index_map:
            return None
        rng = self.inner._get_model_param_range_map(param)["param"]
        return rng.start, rng.end, self.inner._get_main_param_and_optimizer_states(param)

    def full_tensor(self, param: torch.nn.Parameter, key: str) -> torch.Tensor:
        """``param``'s fp32 main weight (``key="param"``) or Adam state (``exp_avg``, ``exp_avg_sq``) in its full
        shape, or AdamW's ``step`` (0-d), assembled from every data-parallel rank's slice (collective over
        the data-parallel group)."""
        local = self._local(param)
        if key == "step":
            step = torch.zeros((), dtype=torch.float32, device=param.device)
            if local is not None and "step" in local[2]:
                step.fill_(float(local[2]["step"]))
            if self.groups.dp > 1:
                dist.all_reduce(step, op=dist.ReduceOp.MAX, group=self.groups.dp_group)
            return step
        full = torch.zeros(param.numel(), dtype=torch.float32, device=param.device)
        if local is not None:
            start, end, tensors = local
            full[start:end] = tensors[key].float().reshape(-1)
        if self.groups.dp > 1:
            dist.all_reduce(full, group=self.groups.dp_group)  # slices are disjoint: the sum assembles
        return full.view_as(param)

    def load_full(self, param: torch.nn.Parameter, state: dict[str, torch.Tensor | None]) -> None:
        """Set ``param`` (all of it: every rank holds the whole parameter between steps) and this rank's slice
        of its main weight and Adam state from full-shape tensors (``param``, ``exp_avg``, ``exp_avg_sq``;
        0-d ``step``). Missing Adam state (a tensor the saved optimizer never stepped) starts fresh."""
        with torch.no_grad():
            param.copy_(state["param"].to(param.dtype))
            local = self._local(param)
            if local is None:
                return
            start, end, tensors = local
            fresh = any(state.get(k) is None for k in ("exp_avg", "exp_avg_sq", "step"))
            for key, dst in tensors.items():
                if key == "step":
                    dst.fill_(0.0 if fresh else float(state["step"]))
                elif fresh and key != "param":
                    dst.zero_()
                else:
                    dst.copy_(state[key].reshape(-1)[start:end].to(dst.dtype))

    def ensure_state(self) -> None:
        """Allocate the Adam state (a zero-learning-rate step on zero gradients) so a checkpoint can be
        loaded into it before the first real step."""
        if self.torch_optimizer.state:
            return
        lrs = [g["lr"] for g in self.torch_optimizer.param_groups]
        for group in self.torch_optimizer.param_groups:
            group["lr"] = 0.0
            for p in group["params"]:
                p.grad = torch.zeros_like(p)
        self.torch_optimizer.step()
        for group, lr in zip(self.torch_optimizer.param_groups, lrs):
            group["lr"] = lr
            for p in group["params"]:
                p.grad = None

    # ---- memory ----------------------------------------------------------------------------------------
    def memory(self, counter: StorageCounter) -> dict[str, int]:
        """grads, main_weights and optimizer bytes (``counter`` has already seen the parameters)."""
        grads = counter.add(buffer.grad_data for buffer in self.ddp.buffers)
        main = counter.add(p for g in self.torch_optimizer.param_groups for p in g["params"])
        return {
            "grads": grads,
            "optimizer": counter.add(state_tensors(self.torch_optimizer)),
            "main_weights": main,
        }
