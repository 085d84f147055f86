"""``EngineConfig``: the training engine (``engine.*``): backend, optimizer, schedule, parallel layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from vrl.config import MAX_STEPS, choice

ENGINES = ["fsdp", "megatron"]
#: attention implementations that keep packed sequences apart (transformers' packed mask or varlen kernels)
PACKING_ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")
#: those that also take the explicit shared-prefix mask of packed shared prompts
SHARED_PREFIX_ATTENTION = ("sdpa", "eager")


@dataclass
class EngineConfig:
    name: str = choice("fsdp", ENGINES)
    """Training backend: fsdp (torch FSDP2, data parallel) or megatron (Megatron-Core tensor/pipeline parallel)."""
    lr: float = 1e-6
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas [beta1, beta2]."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    lr_schedule: str = choice("constant", ["constant", "cosine"])
    """Learning-rate schedule after warm-up."""
    min_lr_ratio: float = 0.0
    """Cosine schedule floor as a fraction of lr."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables."""
    micro_batch_size: int = 8
    """Trajectories per forward/backward pass (gradient accumulation inside a mini-batch)."""
    param_dtype: str = choice("float32", ["float32", "bfloat16"])
    """Compute dtype of parameters in forward/backward (FSDP mixed precision keeps fp32 masters)."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory."""
    share_prompts: bool = True
    """fsdp: run each distinct prompt of a micro-batch once (vision tower included) and its group's
    responses on its key/value cache, instead of every row's full sequence; same log-probs and gradients
    up to float rounding. Padded training passes fall back to full sequences under gradient_checkpointing
    (packed ones keep sharing: engine.packing)."""
    max_tokens_per_micro_batch: int = 0
    """fsdp: token budget of one forward/backward pass, replacing micro_batch_size: trajectories (with
    share_prompts, whole groups where they fit) are split by a balanced first-fit so no pass computes more
    tokens than this (padding counted unless engine.packing). 0: micro_batch_size trajectories per pass.
    A trajectory longer than the budget is an error."""
    packing: bool = False
    """fsdp: concatenate a micro-batch's sequences into one row without padding; attention stays inside
    each sequence (varlen under flash_attention_*, sdpa run per sequence under sdpa, a block mask under
    eager), each keeps its own M-RoPE positions and vision features. Same log-probs and gradients as
    padded up to float rounding."""
    attn_implementation: str = "sdpa"
    """fsdp: the policy's attention kernel (a transformers name): sdpa (CPU and GPU), eager,
    flash_attention_2/3 (GPU, needs the flash-attn package; varlen for packed sequences)."""
    sequence_parallel_size: int = 1
    """fsdp: Ulysses sequence parallelism S: S consecutive ranks share each sample, each holding 1/S of
    its tokens (attention all-to-alls swap token sharding for head sharding) and encoding 1/S of its
    frames/images. World = data parallel × S; S must divide the attention heads, and the KV heads must
    divide by S or divide S (fewer KV heads than S are repeated up to S). 1: off."""
    tensor_parallel_size: int = 1
    """Megatron: tensor-parallel degree (must divide attention heads and KV heads)."""
    pipeline_parallel_size: int = 1
    """Megatron: pipeline stages (must divide the number of decoder layers)."""
    num_microbatches: int = 1
    """Megatron: microbatches per pipeline step (1F1B schedule)."""
    distributed_optimizer: bool = False
    """Megatron: shard the optimizer over data-parallel ranks (megatron-core's DDP + DistributedOptimizer,
    ZeRO-1): gradients reduce-scattered, each rank updates its 1/DP slice of fp32 main weights and Adam
    moments, parameters all-gathered. With param_dtype=bfloat16 (GPU) the parameters are bfloat16 and the
    fp32 main weights live in the optimizer: 6 + 12/DP bytes per parameter instead of 16."""
    sequence_parallel: bool = False
    """Megatron: sequence parallelism inside the tensor-parallel group (needs tensor_parallel_size >= 2):
    norms and residuals hold 1/TP of the tokens (all-gathered before, reduce-scattered after the parallel
    linears), so those activations shrink by TP. Not fsdp's Ulysses engine.sequence_parallel_size."""
    recompute: str = choice("none", ["none", "selective", "full"])
    """Megatron activation recomputation: selective recomputes the core attention (its S x S tensors),
    full every decoder layer from its input; none keeps all activations. gradient_checkpointing=true is
    the same as full."""

    def validate(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"engine.lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_steps <= MAX_STEPS:
            raise ValueError(f"engine.warmup_steps must be in [0, {MAX_STEPS}], got {self.warmup_steps}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(
                "engine.weight_decay and engine.grad_clip must be >= 0 (grad_clip 0: no clipping)"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"engine.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.micro_batch_size < 1:
            raise ValueError(f"engine.micro_batch_size must be >= 1, got {self.micro_batch_size}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"engine.betas must be two values in [0, 1), got {self.betas}")
        for key in ("tensor_parallel_size", "pipeline_parallel_size", "num_microbatches"):
            if getattr(self, key) < 1:
                raise ValueError(f"engine.{key} must be >= 1, got {getattr(self, key)}")
        if self.name == "fsdp" and (self.tensor_parallel_size > 1 or self.pipeline_parallel_size > 1):
            raise ValueError(
                "engine.tensor_parallel_size / pipeline_parallel_size need engine=megatron (fsdp is data parallel)."
            )
        self._validate_micro_batching()
        self._validate_megatron_scale()
        self._validate_sequence_parallel()

    def _validate_megatron_scale(self) -> None:
        """The Megatron-only memory features, and the combinations they need."""
        used = [k for k in ("distributed_optimizer", "sequence_parallel") if getattr(self, k)]
        used += ["recompute"] if self.recompute != "none" else []
        if used and self.name != "megatron":
            raise ValueError(
                f"engine.{', engine.'.join(used)} are megatron features (fsdp shards the optimizer itself and "
                "recomputes with engine.gradient_checkpointing); set engine=megatron or leave them off"
            )
        if self.sequence_parallel and self.tensor_parallel_size < 2:
            raise ValueError(
                "engine.sequence_parallel=true splits tokens over the tensor-parallel group: it needs "
                "engine.tensor_parallel_size >= 2"
            )
        if self.gradient_checkpointing and self.recompute == "selective":
            raise ValueError(
                "engine.gradient_checkpointing=true means full recomputation, engine.recompute=selective asks "
                "for less: set one of them"
            )

    def _validate_sequence_parallel(self) -> None:
        """What can be checked without the model and the world size (see :func:`check_sequence_parallel`)."""
        s = self.sequence_parallel_size
        if s < 1:
            raise ValueError(f"engine.sequence_parallel_size must be >= 1 (1: off), got {s}")
        if s > 1 and self.name != "fsdp":
            raise ValueError(
                "engine.sequence_parallel_size > 1 is an fsdp feature (Megatron has its own in "
                "engine.tensor_parallel_size); set engine=fsdp or sequence_parallel_size=1"
            )
        if s > 1 and self.share_prompts and not self.packing:
            raise ValueError(
                "engine.sequence_parallel_size > 1 cannot run the padded shared-prompt pass (its responses "
                "run on a key/value cache of the whole prompt); set engine.packing=true (shared prompts "
                "through the packed prefix mask) or engine.share_prompts=false"
            )
        if s > 1 and self.attn_implementation not in SHARED_PREFIX_ATTENTION:
            raise ValueError(
                f"engine.sequence_parallel_size > 1 runs attention as sdpa on the head-sharded full "
                f"sequence; engine.attn_implementation={self.attn_implementation} is not supported with it. "
                f"Use {' or '.join(SHARED_PREFIX_ATTENTION)}"
            )

    def _validate_micro_batching(self) -> None:
        """Token budget and packing: what fails here would otherwise fail inside the job."""
        if self.max_tokens_per_micro_batch < 0:
            raise ValueError(
                f"engine.max_tokens_per_micro_batch must be >= 0 (0: micro_batch_size), got "
                f"{self.max_tokens_per_micro_batch}"
            )
        if self.name != "fsdp" and (self.packing or self.max_tokens_per_micro_batch):
            raise ValueError(
                "engine.packing and engine.max_tokens_per_micro_batch are fsdp features; engine=megatron "
                "splits a step by engine.num_microbatches: set engine=fsdp or leave them off"
            )
        if self.packing and self.attn_implementation not in PACKING_ATTENTION:
            raise ValueError(
                f"engine.packing=true needs an attention implementation that keeps packed sequences apart; "
                f"engine.attn_implementation={self.attn_implementation} does not. Use one of "
                f"{', '.join(PACKING_ATTENTION)} (sdpa on CPU, flash_attention_2 on GPU), or packing=false"
            )
        if self.packing and self.share_prompts and self.attn_implementation not in SHARED_PREFIX_ATTENTION:
            raise ValueError(
                f"engine.packing with engine.share_prompts needs an explicit shared-prefix attention mask, "
                f"which engine.attn_implementation={self.attn_implementation} cannot take (varlen kernels "
                f"pack whole sequences only). Use attn_implementation={' or '.join(SHARED_PREFIX_ATTENTION)}, "
                "or share_prompts=false to pack every trajectory whole"
            )


def check_token_budget(engine: EngineConfig, longest: int, why: str) -> None:
    """Raise before the job starts when a trajectory of ``longest`` tokens (``why`` names the keys that
    bound it) could exceed ``engine.max_tokens_per_micro_batch``: no micro-batch could hold it."""
    budget = engine.max_tokens_per_micro_batch
    if budget and longest > budget:
        raise ValueError(
            f"engine.max_tokens_per_micro_batch={budget} is below the longest trajectory the run can "
            f"produce ({why} = {longest}): no micro-batch could hold it. Set "
            f"engine.max_tokens_per_micro_batch >= {longest}, or lower those limits"
        )


def check_sequence_parallel(engine: EngineConfig, world_size: int, num_heads: int, num_kv_heads: int) -> None:
    """Raise before any process group starts when ``engine.sequence_parallel_size`` cannot split this model
    over ``world_size`` ranks (one message naming every failed rule and what would work).

    Rules: S divides the world size (world = DP × S); S divides the attention heads (each rank attends
    with H/S query heads over the full sequence); the KV heads divide by S, or S divides by them: then
    each KV head is repeated S / n_kv times so every rank holds one KV head for its query heads."""
    s = engine.sequence_parallel_size
    if s == 1:
        return
    problems = []
    if world_size % s:
        problems.append(f"it does not divide the world size {world_size} (world = data parallel × S)")
    if num_heads % s:
        problems.append(f"it does not divide the {num_heads} attention heads")
    if num_kv_heads % s and s % num_kv_heads:
        problems.append(f"the {num_kv_heads} KV heads neither divide by S nor divide S (for repetition)")
    if problems:
        fits = [d for d in range(1, world_size + 1) if world_size % d == 0 and num_heads % d == 0]
        fits = [d for d in fits if num_kv_heads % d == 0 or d % num_kv_heads == 0]
        raise ValueError(
            f"engine.sequence_parallel_size={s}: " + "; ".join(problems) + f". Values that work here: {fits}"
        )
