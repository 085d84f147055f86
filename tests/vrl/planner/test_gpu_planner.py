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
