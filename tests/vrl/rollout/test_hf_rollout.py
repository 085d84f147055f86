"""The HF rollout engine: seeded determinism, batching-invariant greedy output, weight updates, and no
vision placeholder tokens in responses."""

from __future__ import annotations

import torch
from vrl_fixtures import make_prompts

from vrl.models.loading import load_hf_model
from vrl.rollout.base import SamplingParams, vision_token_ids
from vrl.rollout.hf import HFRollout


def test_sampling_is_seeded_and_greedy_is_batch_invariant(tiny_qwen25):
    engine = HFRollout(tiny_qwen25, torch.device("cpu"), batch_size=3)
    prompts = make_prompts(tiny_qwen25)
    params = SamplingParams(n=3, temperature=1.0, max_tokens=10)
    a = engine.generate(prompts, params, seed=5)
    assert [len(g) for g in a] == [3] * len(prompts)
    assert a == engine.generate(prompts, params, seed=5)
    assert a != engine.generate(prompts, params, seed=6)
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=10)
    together = engine.generate(prompts, greedy, seed=0)
    alone = [engine.generate([p], greedy, seed=0)[0] for p in prompts]
    assert [g[0].token_ids for g in together] == [g[0].token_ids for g in alone]
    for group in a:
        for c in group:
            assert len(c.token_ids) <= 10 and c.truncated == (
                len(c.token_ids) == 10 and c.token_ids[-1] not in engine.eos_ids
            )


def test_responses_never_contain_vision_placeholders(tiny_qwen25):
    engine = HFRollout(tiny_qwen25, torch.device("cpu"))
    banned = set(vision_token_ids(engine.model.config))
    assert banned
    # make the placeholders the model's favourite tokens: suppression must still keep them out
    with torch.no_grad():
        engine.model.lm_head.weight[sorted(banned)] += 5.0
    out = engine.generate(make_prompts(tiny_qwen25), SamplingParams(n=4, max_tokens=12), seed=0)
    assert not banned & {t for g in out for c in g for t in c.token_ids}


def test_update_weights_changes_generation(tiny_qwen25):
    engine = HFRollout(tiny_qwen25, torch.device("cpu"))
    prompts = make_prompts(tiny_qwen25)
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=8)
    before = engine.generate(prompts, greedy, seed=0)
    other = load_hf_model(tiny_qwen25)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    engine.update_weights(other.state_dict().items())
    for name, p in other.named_parameters():
        assert torch.equal(dict(engine.model.named_parameters())[name], p)
    assert engine.generate(prompts, greedy, seed=0) != before


def test_uint8_video_patches_sample_the_same_responses(tiny_qwen25):
    engine = HFRollout(tiny_qwen25, torch.device("cpu"))
    params = SamplingParams(n=2, temperature=1.0, max_tokens=8)
    host = make_prompts(tiny_qwen25)
    uint8 = make_prompts(tiny_qwen25, uint8_patches=True)
    assert uint8[0].vision["pixel_values_videos"].dtype == torch.uint8
    assert engine.generate(uint8, params, seed=3) == engine.generate(host, params, seed=3)
