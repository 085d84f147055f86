"""The activation estimate against measurement on CPU.

Two checks. (1) The per-layer terms are exact: the bytes autograd saves inside one decoder layer and one
vision block (a saved-tensors hook, distinct storages, parameters left out) equal the planner's per-token
and per-patch counts times the tokens and patches, for both families, float32 and bfloat16, and for the
Megatron engine's layer. (2) The whole estimate is within 25 % of the measured peak: the peak of live
activation bytes over one micro-batch's forward and backward (``peak.PeakLiveBytes``: a dispatch mode
that follows every tensor's storage until it is freed, parameters and gradients excluded), for a list of
configurations: both families, both dtypes, a wider model, shared prompts, gradient checkpointing, the
entropy bonus, a text-only prompt, and the Megatron engine.
"""

from __future__ import annotations

import pytest
import torch
from video_batches import build_model, micro_batch, video_prompt

from vrl.batch import collate
from vrl.planner.activations import (
    DTYPE_BYTES,
    hf_activations,
    hf_layer_token_bytes,
    hf_vision_block_patch_bytes,
    megatron_activations,
    megatron_layer_token_bytes,
    megatron_probs_bytes,
)
from vrl.planner.layout import Layout
from vrl.planner.peak import PeakLiveBytes, measure_update, saved_bytes_by_module
from vrl.planner.shapes import ModelShapes

TOLERANCE = 0.25
WIDE = {"hidden_size": 256, "intermediate_size": 768, "num_attention_heads": 8, "num_key_value_heads": 2}


def _shapes(model) -> ModelShapes:
    return ModelShapes.from_config(model.config.to_dict())


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_layer_and_block_terms_are_exact(tiny_models, name, dtype):
    path = tiny_models[name]
    model = build_model(path, getattr(torch, dtype))
    mb, seq, _ = micro_batch([video_prompt(path, 4, 4)], rows=2, response=16, share=False)
    modules = {"layer": model.model.language_model.layers[1], "block": model.model.visual.blocks[-1]}
    saved = saved_bytes_by_module(model, mb, modules)
    shapes, a = _shapes(model), DTYPE_BYTES[dtype]
    assert saved["layer"] == seq.rows * seq.length * hf_layer_token_bytes(shapes.text, a)
    block = seq.rows * seq.vision_patches * hf_vision_block_patch_bytes(shapes.vision, shapes.family, a)
    if shapes.vision.deepstack:  # the block's input was saved by the DeepStack merger before it ran
        block -= seq.rows * seq.vision_patches * shapes.vision.hidden * a
    assert saved["block"] == block


# (model, dtype, rows, response, frames, side, prompts, share, recompute, entropy, text overrides)
CONFIGS = {
    "qwen2.5-fp32": ("tiny-qwen2.5-vl", "float32", 2, 64, 4, 4, 1, False, False, False, {}),
    "qwen3-bf16": ("tiny-qwen3-vl", "bfloat16", 2, 64, 4, 4, 1, False, False, False, {}),
    "qwen2.5-wide-long-video": ("tiny-qwen2.5-vl", "float32", 2, 64, 8, 8, 1, False, False, False, WIDE),
    "qwen2.5-bf16-shared": ("tiny-qwen2.5-vl", "bfloat16", 4, 32, 4, 4, 1, True, False, False, {}),
    "qwen3-fp32-shared-2groups-entropy": ("tiny-qwen3-vl", "float32", 4, 48, 4, 4, 2, True, False, True, {}),
    "qwen2.5-wide-recompute": ("tiny-qwen2.5-vl", "float32", 2, 64, 8, 8, 1, False, True, False, WIDE),
    "qwen3-bf16-recompute-entropy": ("tiny-qwen3-vl", "bfloat16", 2, 64, 8, 8, 1, False, True, True, {}),
    "qwen2.5-bf16-text-only": ("tiny-qwen2.5-vl", "bfloat16", 4, 128, 0, 0, 4, False, False, False, {}),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_estimate_within_25_percent_of_the_measured_peak(tiny_models, case):
    name, dtype, rows, response, frames, side, groups, share, recompute, entropy, text = CONFIGS[case]
    path = tiny_models[name]
    model = build_model(path, getattr(torch, dtype), **text)
    if recompute:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    prompts = [video_prompt(path, frames, side, seed=g) for g in range(groups)]
    mb, seq, _ = micro_batch(prompts, rows, response, share)
    layout = Layout("fsdp", 1, rows, dtype, recompute="full" if recompute else "none", share_prompts=share)
    estimate = sum(hf_activations(_shapes(model), layout, seq, entropy=entropy).values())
    measured = measure_update(model, mb, entropy=entropy)
    print(
        f"\nACTIVATIONS {case}: estimate {estimate} B, measured peak {measured} B, ratio {estimate / measured:.3f}"
    )
    assert abs(estimate - measured) <= TOLERANCE * measured


@pytest.fixture(scope="module")
def megatron_one_process():
    from vrl.distributed import init_distributed

    ctx = init_distributed()
    yield ctx
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()


@pytest.mark.parametrize(
    ("name", "rows", "response", "side"), [("tiny-qwen2.5-vl", 2, 64, 4), ("tiny-qwen3-vl", 2, 32, 6)]
)
def test_megatron_layer_exact_and_estimate_within_25_percent(
    tiny_models, megatron_one_process, name, rows, response, side
):
    """TP=1 in one process (float32: the CPU path): one micro-batch through megatron's schedule."""
    from vrl.algorithms.config import AlgorithmConfig
    from vrl.engines.config import EngineConfig
    from vrl.engines.megatron.engine import MegatronEngine
    from vrl.trainer.mixing import MixConfig
    from vrl.trainer.update import make_loss_fn

    ctx, path = megatron_one_process, tiny_models[name]
    engine = MegatronEngine(EngineConfig(name="megatron", micro_batch_size=rows), path, ctx, total_steps=1)
    _, seq, trajs = micro_batch([video_prompt(path, 4, side)], rows, response, share=False)
    for t, lp in zip(trajs, engine.compute_logprobs(trajs).logp):
        t.old_logp = lp
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, ctx)
    (call,) = engine.runner.calls(engine._micro_batches(trajs))
    params = list(engine.policy.parameters())
    tracker = PeakLiveBytes(params)
    hooks = [p.register_post_accumulate_grad_hook(lambda p: tracker.exclude(p.grad)) for p in params]
    layer = engine.policy.gpt.decoder.layers[1]
    ids = {id(p.untyped_storage()) for p in params}
    saved: dict[int, torch.UntypedStorage] = {}
    inside = [False]
    layer.register_forward_pre_hook(lambda m, a: inside.__setitem__(0, True))
    layer.register_forward_hook(lambda m, a, o: inside.__setitem__(0, False))

    def pack(t):
        st = t.untyped_storage()
        if inside[0] and id(st) not in ids:
            saved.setdefault(id(st), st)
        return t

    with tracker, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        engine.runner.train(engine.policy, call, loss_fn, False)
    for h in hooks:
        h.remove()
    shapes = ModelShapes.from_config(engine.ckpt.config.to_dict())
    per_layer = seq.rows * seq.length * megatron_layer_token_bytes(shapes.text, 4, 1, False)
    mask = seq.length**2  # the causal mask (bool), one tensor every layer saves
    assert (
        sum(st.nbytes() for st in saved.values())
        == per_layer + megatron_probs_bytes(shapes.text, seq, 4, 1) + mask
    )
    estimate = sum(megatron_activations(shapes, Layout("megatron", 1, rows), seq, 0, entropy=False).values())
    print(
        f"\nACTIVATIONS megatron-{name}: estimate {estimate} B, measured peak {tracker.peak} B, ratio {estimate / tracker.peak:.3f}"
    )
    assert abs(estimate - tracker.peak) <= TOLERANCE * tracker.peak


def test_eager_attention_keeps_its_probabilities(tiny_models):
    """engine.attn_implementation=eager: the (heads × length²) softmax per layer is counted too."""
    path = tiny_models["tiny-qwen2.5-vl"]
    model = build_model(path, torch.float32)
    model.set_attn_implementation("eager")
    mb, seq, _ = micro_batch([video_prompt(path, 4, 4)], rows=2, response=128, share=False)
    shapes = _shapes(model)
    eager = Layout("fsdp", 1, 2, "float32", share_prompts=False, attention="eager")
    estimate = sum(hf_activations(shapes, eager, seq, entropy=False).values())
    sdpa = sum(
        hf_activations(
            shapes, Layout("fsdp", 1, 2, "float32", share_prompts=False), seq, entropy=False
        ).values()
    )
    measured = measure_update(model, mb, entropy=False)
    print(
        f"\nACTIVATIONS eager: estimate {estimate} B, measured peak {measured} B, ratio {estimate / measured:.3f}"
    )
    assert estimate > sdpa
    assert abs(estimate - measured) <= TOLERANCE * measured


# (model, dtype, prompts, rows, response, frames, side, share, token budget: 0 = one micro-batch of all rows)
PACKED = {
    "qwen2.5-fp32-packed": ("tiny-qwen2.5-vl", "float32", 4, 4, 48, 4, 4, False, 0),
    "qwen3-bf16-packed-shared": ("tiny-qwen3-vl", "bfloat16", 2, 8, 48, 4, 4, True, 0),
    "qwen2.5-fp32-packed-shared-token-budget": ("tiny-qwen2.5-vl", "float32", 3, 12, 32, 4, 6, True, 1),
    "qwen3-fp32-padded-token-budget": ("tiny-qwen3-vl", "float32", 8, 8, 64, 4, 4, False, 1),
}


@pytest.mark.parametrize("case", sorted(PACKED))
def test_packed_and_token_budget_within_25_percent_of_the_measured_peak(tiny_models, case):
    """``engine.packing`` (one row, attention per sequence; shared prompts as ``[P, R_1..R_n]`` under an
    explicit mask) and ``engine.max_tokens_per_micro_batch``: the engine's own planner splits the
    trajectories, the largest micro-batch's peak is measured, and the planner's micro-batch (rows from the
    budget) must hold as many rows and estimate within 25 %. A budget of 1 in the table means: room for
    two groups' packed sequences (or four padded rows), not three."""
    from vrl.engines.microbatch import Layout as BatchLayout
    from vrl.engines.microbatch import plan_micro_batches
    from vrl.engines.packing import pack, use_varlen_sdpa
    from vrl.planner.workload import Workload

    name, dtype, groups, rows, response, frames, side, share, budgeted = PACKED[case]
    packing = "padded" not in case
    path = tiny_models[name]
    model = build_model(path, getattr(torch, dtype))
    if packing:
        use_varlen_sdpa(model)
    prompts = [video_prompt(path, frames, side, seed=g) for g in range(groups)]
    _, seq, trajs = micro_batch(prompts, rows, response, share)
    group = rows // groups
    work = Workload(seq.prompt_tokens, response, seq.vision_patches, group, rows, entropy=False)
    layout = Layout("fsdp", 1, rows, dtype, share_prompts=share, packing=packing)
    if budgeted:
        per_group = work.cost(group, layout)
        budget = 2 * per_group if share else 4 * seq.length
        layout = layout.with_changes(max_tokens_per_micro_batch=budget)
        plan = plan_micro_batches(trajs, budget, BatchLayout(packing=packing, share_prompts=share))
    else:
        plan = [list(range(rows))]
    planned = work.micro_batch(layout)
    assert planned.rows == max(len(indices) for indices in plan)
    build = pack if packing else collate
    measured = max(
        measure_update(model, build([trajs[i] for i in indices], 0, share), entropy=False) for indices in plan
    )
    estimate = sum(hf_activations(_shapes(model), layout, planned, entropy=False).values())
    print(
        f"\nACTIVATIONS {case}: {len(plan)} micro-batch(es), estimate {estimate} B, measured peak {measured} B, "
        f"ratio {estimate / measured:.3f}"
    )
    assert abs(estimate - measured) <= TOLERANCE * measured
