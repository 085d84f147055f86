"""The HF rollout engine: seeded determinism, batching-invariant greedy output, weight updates, and no
vision placeholder tokens in responses."""

from __future__ import annotations

import math

import pytest
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


def _engine_logprobs(model_path, temperature: float, prompts, out) -> tuple[list, list]:
    from vrl.batch import Trajectory
    from vrl.distributed import init_distributed
    from vrl.engines.config import EngineConfig
    from vrl.engines.fsdp import FSDPEngine

    engine = FSDPEngine(
        EngineConfig(), model_path, init_distributed(), total_steps=1, temperature=temperature
    )
    trajs = [
        Trajectory(prompt=p, response_ids=torch.tensor(c.token_ids), response_text=c.text)
        for p, group in zip(prompts, out)
        for c in group
    ]
    return engine.compute_logprobs(trajs).logp, [torch.tensor(c.logprobs) for g in out for c in g]


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_log_probs_equal_the_trainers_at_temperature_one(tiny_qwen25, temperature):
    """Raw mode (temperature 1 or greedy, nothing truncated): the sampled tokens' log-probs are the
    trainer's, fp32, up to kernel summation order."""
    engine = HFRollout(tiny_qwen25, torch.device("cpu"), batch_size=3)
    prompts = make_prompts(tiny_qwen25)
    out = engine.generate(prompts, SamplingParams(n=2, temperature=temperature, max_tokens=8), seed=1)
    ours, theirs = _engine_logprobs(tiny_qwen25, 1.0, prompts, out)
    assert sum(t.numel() for t in theirs) == sum(len(c.token_ids) for g in out for c in g) > 0
    assert max(float((a - b).abs().max()) for a, b in zip(ours, theirs)) < 1e-5


def test_processed_log_probs_are_the_distribution_sampled_from(tiny_qwen25):
    """Processed mode: temperature as the trainer applies it; the vision-token ban and top-p renormalise
    over fewer tokens, so the rollout log-prob is >= the trainer's at every token, by exactly
    -log(kept mass), and the ban alone (no top-p) moves it by little."""
    engine = HFRollout(tiny_qwen25, torch.device("cpu"), batch_size=4)
    prompts = make_prompts(tiny_qwen25)
    hot = engine.generate(prompts, SamplingParams(n=2, temperature=0.7, max_tokens=6), seed=2)
    ours, theirs = _engine_logprobs(tiny_qwen25, 0.7, prompts, hot)
    gaps = torch.cat([b - a for a, b in zip(ours, theirs)])
    assert gaps.min() > -1e-5 and gaps.max() < 0.05
    nucleus = engine.generate(prompts, SamplingParams(n=2, temperature=1.0, top_p=0.5, max_tokens=6), seed=2)
    ours, theirs = _engine_logprobs(tiny_qwen25, 1.0, prompts, nucleus)
    gaps = torch.cat([b - a for a, b in zip(ours, theirs)])
    assert gaps.min() > -1e-5 and gaps.mean() > 0.1  # half the mass or less is kept: log 2 at most
    assert gaps.max() <= math.log(1 / 0.5) + 0.05
