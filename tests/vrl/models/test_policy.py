"""ResponseLogProbs: the shared-prompt pass (each distinct prompt once, responses on its key/value cache)
gives the full-sequence pass's log-probs, entropies and gradients, for both families and for video, image
and text-only prompts."""

from __future__ import annotations

import pytest
import torch
from vrl_fixtures import make_trajectories

from vrl.batch import collate
from vrl.models.loading import load_hf_model
from vrl.models.policy import ResponseLogProbs


def _pass(policy: ResponseLogProbs, mb) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    policy.zero_grad(set_to_none=True)
    logp, ent = policy(mb, with_entropy=True)
    (logp.sum() + 0.1 * ent.sum()).backward()
    grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
    return logp.detach(), ent.detach(), grads


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_shared_prompt_pass_equals_the_full_sequence_pass(built_models, name):
    torch.manual_seed(0)
    trajs = make_trajectories(built_models[name], per_prompt=3)
    policy = ResponseLogProbs(load_hf_model(built_models[name]))
    full, shared = collate(trajs, 0), collate(trajs, 0, share_prompts=True)
    assert full.shared is None and shared.shared is not None
    assert shared.shared.input_ids.shape[0] == 4 and shared.shared.index.tolist() == [
        i // 3 for i in range(12)
    ]
    lp_a, ent_a, g_a = _pass(policy, full)
    lp_b, ent_b, g_b = _pass(policy, shared)
    torch.testing.assert_close(lp_b, lp_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent_b, ent_a, atol=1e-5, rtol=0)
    assert set(g_a) == set(g_b) and any(".visual." in n for n in g_a)
    for n in g_a:
        torch.testing.assert_close(g_b[n], g_a[n], atol=5e-5, rtol=1e-3)


def test_nothing_shared_keeps_the_full_sequence_pass(built_models):
    trajs = make_trajectories(built_models["tiny-qwen2.5-vl"], per_prompt=1)
    assert collate(trajs, 0, share_prompts=True).shared is None


def test_gradient_checkpointing_falls_back_to_full_sequences(built_models):
    trajs = make_trajectories(built_models["tiny-qwen2.5-vl"], per_prompt=2)
    model = load_hf_model(built_models["tiny-qwen2.5-vl"])
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy = ResponseLogProbs(model).train()
    lp_a, _, g_a = _pass(policy, collate(trajs, 0))
    lp_b, _, g_b = _pass(policy, collate(trajs, 0, share_prompts=True))
    assert torch.equal(lp_a, lp_b)
    for n in g_a:
        assert torch.equal(g_a[n], g_b[n]), n
