"""Activation memory of one micro-batch's forward + backward on one device (bytes).

The per-layer terms count the tensors autograd keeps from forward to backward in the modules the engines
run, read from their code and checked tensor for tensor on CPU (``tests/vrl/planner``: a saved-tensors
hook over one layer must equal these byte counts exactly, in float32 and bfloat16). In ``a``-byte compute
(``a`` = 2 for bfloat16, 4 for float32), per token of one HF decoder layer:

- attention block: the norm's float32 input and its rsqrt, the normalised input and the q/k/v input
  (2·h·a), q, k, v and the attention output (2·q_dim + 2·kv_dim, ``a``), the log-sum-exp (heads, fp32);
- MLP block: the norm (float32 input, rsqrt, 2·h·a) and gate, up, SiLU, product (4·F·a);
- Qwen3's q/k norms add their float32 inputs, rsqrts and normalised outputs.

HF's RMSNorm upcasts to float32 before normalising, which is why bfloat16 activations are not half of
float32 ones. SDPA and flash attention keep no (sequence × sequence) matrix (flash / memory-efficient
kernels on GPUs, the CPU's flash kernel here); ``engine.attn_implementation=eager`` does, and is counted. Megatron's local layer spec is the exception: its unfused
attention keeps the softmax probabilities (heads / TP × sequence² per row, float32) in every layer.

Besides the saved tensors, the peak adds the transient logits of the response positions in backward
(float32 gradients of the log-softmax). With ``recompute=full`` (HF gradient checkpointing, Megatron's
full recompute) a layer keeps only its input and the one layer being recomputed holds its full set.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrl.planner.layout import Layout
from vrl.planner.shapes import ModelShapes, TextShapes, VisionShapes

FP32 = 4
DTYPE_BYTES = {"float32": 4, "bfloat16": 2}
ENTROPY_CHUNK = 1024
"""Rows per chunk of ``vrl.algorithms.entropy.entropy_from_logits`` (recomputed chunk by chunk)."""


@dataclass(frozen=True)
class Sequences:
    """One micro-batch on one device."""

    rows: int
    """Trajectories in the micro-batch."""
    prompt_tokens: int
    """Tokens of the longest prompt, vision placeholders included."""
    response_tokens: int
    """Tokens of the longest response."""
    vision_patches: int = 0
    """Vision-tower patches of one prompt's media (before the 2×2 merge); 0 for text."""
    distinct_prompts: int = 0
    """Prompts among the rows (a group's samples share one); 0: every row has its own."""

    @property
    def length(self) -> int:
        return self.prompt_tokens + self.response_tokens

    @property
    def prompts(self) -> int:
        return self.distinct_prompts or self.rows


# ---- per-token / per-patch terms ---------------------------------------------------------------------
def hf_layer_token_bytes(t: TextShapes, a: int) -> int:
    """Saved bytes per token of one HF Qwen-VL decoder layer (exact for the HF modules)."""
    out = a * (4 * t.hidden + 2 * t.q_dim + 2 * t.kv_dim + 4 * t.intermediate)
    out += FP32 * (2 * t.hidden + 2 + t.heads)
    if t.qk_norm:
        out += (t.q_dim + t.kv_dim) * (FP32 + a) + FP32 * (t.heads + t.kv_heads)
    return out


def hf_rope_token_bytes(t: TextShapes, a: int) -> int:
    """The decoder's rotary cos/sin, computed once per forward and kept for every layer."""
    return 2 * t.head_dim * a


def hf_vision_block_patch_bytes(v: VisionShapes, family: str, a: int) -> int:
    """Saved bytes per patch of one vision block (Qwen2.5: RMSNorm + SwiGLU; Qwen3: LayerNorm + GELU)."""
    if family == "qwen3_vl":
        return a * (11 * v.hidden + 2 * v.intermediate + 4) + FP32 * v.heads
    return a * (11 * v.hidden + 4 * v.intermediate) + FP32 * (2 * v.hidden + 2 + v.heads)


def hf_vision_once_patch_bytes(v: VisionShapes, family: str, a: int) -> int:
    """Per patch, outside the blocks: the patch-embedding input, rotary tables, the merger(s)."""
    rope = 2 * (v.hidden // v.heads) * FP32
    embed = v.patch_values * a
    if family == "qwen3_vl":
        mergers = a * (4 * v.hidden + 2) + v.deepstack * a * (4 * v.hidden + 1)
    else:
        mergers = FP32 * (v.hidden + 1) + a * 4 * v.hidden
    return rope + embed + mergers


def logits_bytes(
    t: TextShapes, positions: int, a: int, entropy: bool, vocab_split: int = 1
) -> tuple[int, int]:
    """(saved, transient peak) of the LM head over ``positions`` response positions.

    Saved: the picked hidden states and the float32 log-softmax. Transient in backward: its float32
    gradient and the log-softmax's, plus the compute-dtype gradient of the logits; the entropy bonus
    recomputes its softmax chunk by chunk."""
    v = t.vocab // vocab_split
    saved = positions * (t.hidden * a + v * FP32)
    transient = positions * v * (2 * FP32 + a)
    if entropy:
        transient += min(positions, ENTROPY_CHUNK) * v * 3 * FP32
    return saved, transient


# ---- engines -------------------------------------------------------------------------------------------
def layout_shares_prompts(layout: Layout) -> bool:
    """Whether the FSDP engine's training pass runs a group's prompt once: packed always (one sequence
    ``[P, R_1, ..., R_n]``), padded only without gradient checkpointing (it needs a key/value cache)."""
    return layout.share_prompts and (layout.packing or layout.recompute == "none")


def hf_activations(
    shapes: ModelShapes, layout: Layout, seq: Sequences, *, entropy: bool = True
) -> dict[str, int]:
    """Peak activation bytes of one micro-batch through the FSDP engine's HF model, by component.

    Full sequences: every row is right-padded to the longest and runs with its own media (packed without
    sharing: the same tokens, attention run per sequence). Shared prompts (``share_prompts``, fewer
    prompts than rows): padded (no recompute), each prompt runs once and every row's response attends to
    its prompt's key/value cache, gathered per row; packed, each group is one sequence ``[P, R_1..R_n]``
    under an explicit (T × T) mask that attention keeps for backward. Ulysses SP (``layout.sp``) divides
    the per-token terms (every rank holds the whole mask)."""
    t, v, fam = shapes.text, shapes.vision, shapes.family
    a = DTYPE_BYTES[layout.param_dtype]
    sp = layout.sp
    per_layer = hf_layer_token_bytes(t, a)
    block = hf_vision_block_patch_bytes(v, fam, a)
    once = hf_vision_once_patch_bytes(v, fam, a)
    final_norm = FP32 * (t.hidden + 1) + a * t.hidden
    shared = layout_shares_prompts(layout) and seq.prompts < seq.rows
    responses = seq.rows * seq.response_tokens
    mask = 0
    if shared and layout.packing:  # one packed row [P, R_1..R_n] per group, an explicit T × T mask
        tokens = seq.prompts * seq.prompt_tokens + responses
        decoder = t.layers * tokens * per_layer
        media_rows = seq.prompts
        mask = tokens**2 * (1 if layout.attention == "sdpa" else a)
    elif shared:
        prompt_tok = seq.prompts * seq.prompt_tokens
        kv_gathered = (
            2 * seq.rows * seq.length * t.kv_dim * a
        )  # each row's copy of its prompt's K/V + its own
        decoder = t.layers * (
            prompt_tok * per_layer + responses * (per_layer - 2 * t.kv_dim * a) + kv_gathered
        )
        tokens = prompt_tok + responses
        media_rows = seq.prompts
    else:
        tokens = seq.rows * seq.length
        decoder = t.layers * tokens * per_layer
        media_rows = seq.rows
    patches = media_rows * seq.vision_patches
    out = {
        "attention_mask": mask,
        "rope": tokens * hf_rope_token_bytes(t, a),
        "final_norm": tokens * final_norm,
        "vision_once": patches * once,
    }
    probs = 0
    if layout.attention == "eager":  # one layer's softmax probabilities (float32) and compute-dtype copy
        sequences = seq.rows if not shared else seq.prompts + seq.rows
        length = seq.length if not shared else max(seq.prompt_tokens, seq.length)
        probs = sequences * t.heads * length**2 * (FP32 + (a if a != FP32 else 0))
        decoder += t.layers * probs
    if layout.recompute == "none":
        out["decoder_layers"] = decoder
        out["vision_blocks"] = v.depth * patches * block
        recompute_peak = 0
    else:  # full: each layer/block keeps its input; the one being recomputed holds everything
        out["decoder_layers"] = t.layers * tokens * t.hidden * a
        out["vision_blocks"] = v.depth * patches * v.hidden * a
        recompute_peak = max(tokens * per_layer + probs, patches * block)
    saved, transient = logits_bytes(t, responses, a, entropy)
    out["logits"] = saved
    out["peak_transient"] = max(transient, recompute_peak)
    if sp > 1:
        out = {k: val if k == "attention_mask" else -(-val // sp) for k, val in out.items()}
    return out


def megatron_layer_token_bytes(t: TextShapes, a: int, tp: int, sequence_parallel: bool) -> int:
    """Saved bytes per token of one Megatron local-spec decoder layer, without the attention probabilities.

    Replicated over TP (sharded only with sequence parallelism): the two norms' inputs, rsqrts and
    outputs (float32) and the inputs of the column-parallel linears. Split over TP: the query, the keys
    and values expanded to every query head (unfused attention), the context, and SwiGLU's fused output,
    SiLU input copy, SiLU output and product. Per token, not split: the rotary tables (4 × head_dim)."""
    replicated = FP32 * (4 * t.hidden + 2) + a * 2 * t.hidden
    split = a * (4 * t.q_dim + 5 * t.intermediate)
    if t.qk_norm:  # q copy + normalised q, the fused qkv output (kept for the k norm), normalised k
        split += a * (2 * t.q_dim + t.q_dim + 2 * t.kv_dim + t.kv_dim) + FP32 * (t.heads + t.kv_heads)
    rope = 4 * t.head_dim * FP32
    return (replicated // tp if sequence_parallel else replicated) + split // tp + rope


def megatron_probs_bytes(t: TextShapes, seq: Sequences, a: int, tp: int) -> int:
    """One layer's attention probabilities (float32 softmax, plus its compute-dtype copy under bf16)."""
    return seq.rows * (t.heads // tp) * seq.length**2 * (FP32 + (a if a != FP32 else 0))


def megatron_activations(
    shapes: ModelShapes, layout: Layout, seq: Sequences, pp_rank: int, *, entropy: bool = True
) -> dict[str, int]:
    """Peak activation bytes on pipeline stage ``pp_rank`` of the Megatron engine, by component.

    Every row runs its full sequence and its own media (no shared-prompt pass). Unfused attention keeps
    float32 softmax probabilities of (heads / TP) × length² per row and layer. Under 1F1B, stage ``r``
    holds ``min(PP - r, num_microbatches)`` micro-batches in flight."""
    t, v, fam = shapes.text, shapes.vision, shapes.family
    a = DTYPE_BYTES[layout.param_dtype]
    tp, pp = layout.tp, layout.pp
    layers = t.layers // pp
    tokens = seq.rows * seq.length
    per_layer = megatron_layer_token_bytes(t, a, tp, layout.megatron_sequence_parallel)
    probs = megatron_probs_bytes(t, seq, a, tp)
    first, last = pp_rank == 0, pp_rank == pp - 1
    if layout.recompute == "none":
        decoder = layers * (tokens * per_layer + probs)
        recompute_peak = 2 * probs  # the probabilities' gradient and the scores' in one layer's backward
    else:
        decoder = layers * tokens * t.hidden * a
        recompute_peak = tokens * per_layer + 3 * probs
    out = {"decoder_layers": decoder, "causal_mask": seq.length**2}
    if first:
        patches = seq.rows * seq.vision_patches
        out["vision_blocks"] = v.depth * patches * hf_vision_block_patch_bytes(v, fam, a)
        out["vision_once"] = patches * hf_vision_once_patch_bytes(v, fam, a)
        # token embeddings with the vision features scattered in; Qwen3's DeepStack addends (one per layer)
        out["embedding"] = tokens * t.hidden * a * (1 + v.deepstack)
    transient = 0
    if last:
        responses = seq.rows * seq.response_tokens
        out["final_norm"] = tokens * (FP32 * (t.hidden + 1) + a * t.hidden)
        saved, transient = logits_bytes(t, responses, a, entropy, vocab_split=tp)
        # the schedule keeps the stage output (float32 response logits) for backward besides exp(shifted)
        out["logits"] = saved + responses * (t.vocab // tp) * FP32
    in_flight = min(pp - pp_rank, layout.num_microbatches)
    out = {k: val * in_flight for k, val in out.items()}
    out["peak_transient"] = max(transient, recompute_peak)
    return out
