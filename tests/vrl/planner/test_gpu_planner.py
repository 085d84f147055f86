"""GPU tier: the activation estimate on CUDA, where the planner's numbers are used. Same method as the CPU
test (peak live activation bytes, ``peak.PeakLiveBytes``, which follows tensors on any device) on a wider
Qwen2.5-VL (hidden 1024, 8 layers) in bfloat16 with CUDA's SDPA kernels: within 25 % of the estimate,
full sequences, shared prompts and gradient checkpointing."""

from __future__ import annotations

import pytest
import torch
from video_batches import build_model, micro_batch, video_prompt

from vrl.planner.activations import hf_activations
from vrl.planner.layout import Layout
from vrl.planner.peak import measure_update
from vrl.planner.shapes import ModelShapes

pytestmark = pytest.mark.gpu

WIDE = {
    "hidden_size": 1024,
    "intermediate_size": 2816,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "num_hidden_layers": 8,
}


@pytest.mark.parametrize(("share", "recompute"), [(False, False), (True, False), (False, True)])
def test_activation_estimate_on_cuda(tiny_models, share, recompute):
    path = tiny_models["tiny-qwen2.5-vl"]
    model = build_model(path, torch.bfloat16, **WIDE).cuda()
    if recompute:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    mb, seq, _ = micro_batch([video_prompt(path, 16, 8)], rows=4, response=256, share=share)
    layout = Layout("fsdp", 1, 4, "bfloat16", recompute="full" if recompute else "none", share_prompts=share)
    estimate = sum(hf_activations(ModelShapes.from_config(model.config.to_dict()), layout, seq).values())
    torch.cuda.reset_peak_memory_stats()
    measured = measure_update(model, mb.to(torch.device("cuda")), entropy=True)
    print(
        f"\nGPU ACTIVATIONS share={share} recompute={recompute}: estimate {estimate}, measured {measured}, "
        f"torch peak allocated {torch.cuda.max_memory_allocated()}"
    )
    assert abs(estimate - measured) <= 0.25 * measured


@pytest.mark.parametrize("engine_name", ["fsdp", "megatron"])
def test_state_bytes_on_cuda_equal_the_engines(tiny_models, engine_name):
    """bfloat16 on CUDA, one process: FSDP2 mixed precision (fp32 shards) and Megatron's distributed
    optimizer with bf16 parameters, fp32 gradient buffers and fp32 main weights (a GPU-only layout):
    the planner's parameter, gradient, optimizer and main-weight bytes equal the counted storages and the
    engine's ``memory_breakdown()``."""
    from allocated import measure_step
    from vrl_fixtures import make_trajectories

    from vrl.algorithms.config import AlgorithmConfig
    from vrl.distributed import init_distributed
    from vrl.engines.config import EngineConfig
    from vrl.planner.model_memory import fsdp_state, megatron_state
    from vrl.planner.shapes import read_shapes
    from vrl.trainer.mixing import MixConfig
    from vrl.trainer.update import make_loss_fn

    name, path = "tiny-qwen2.5-vl", tiny_models["tiny-qwen2.5-vl"]
    ctx = init_distributed()
    megatron = engine_name == "megatron"
    cfg = EngineConfig(
        name=engine_name, lr=1e-3, micro_batch_size=2, param_dtype="bfloat16", distributed_optimizer=megatron
    )
    if megatron:
        from vrl.engines.megatron.engine import MegatronEngine as cls
    else:
        from vrl.engines.fsdp import FSDPEngine as cls
    engine = cls(cfg, path, ctx, total_steps=2)
    try:
        trajs = make_trajectories(path)
        for t, lp in zip(trajs, engine.compute_logprobs(trajs).logp):
            t.old_logp = lp
        loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, ctx)
        got = measure_step(engine, lambda: engine.train_step(trajs, loss_fn, need_entropy=False))
        hook = engine.memory_breakdown()
    finally:
        if megatron:
            from megatron.core import parallel_state

            parallel_state.destroy_model_parallel()
    layout = Layout(
        engine_name, 1, 2, "bfloat16", distributed_optimizer=megatron, megatron_bf16_params=megatron
    )
    shapes = read_shapes(name)
    want = megatron_state(shapes, layout) if megatron else fsdp_state(shapes, layout)
    main = want.detail.get("optimizer.main_weights", 0)
    assert (got["params"], got["grads"], got["optimizer"] + hook["main_weights"]) == (
        want.params,
        want.grads,
        want.optimizer,
    )
    assert hook["main_weights"] == main and (main > 0) == megatron
