"""Token-budget micro-batches: the planner's rules (hard cap, balance, groups kept whole, clear errors),
an update split by tokens equals one split into single trajectories for every loss aggregation, and
configuration mistakes fail before any process starts."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from vrl_fixtures import make_trajectories

from vrl.algorithms.aggregation import loss_agg_modes
from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import Prompt, Trajectory
from vrl.config import ConfigError, parse
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.engines.microbatch import Layout, micro_batch_cost, plan_micro_batches
from vrl.models.loading import load_hf_model
from vrl.trainer.config import Config
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

ROOT = Path(__file__).resolve().parents[3]
PACKED = Layout(packing=True, share_prompts=False)
PADDED = Layout(packing=False, share_prompts=False)


def fake(prompt_len: int, response_len: int, prompt: Prompt | None = None) -> Trajectory:
    prompt = prompt or Prompt(
        record={}, input_ids=torch.zeros(prompt_len, dtype=torch.long), vision={}, text=""
    )
    return Trajectory(
        prompt=prompt, response_ids=torch.zeros(response_len, dtype=torch.long), response_text=""
    )


def check_plan(trajs: list[Trajectory], plan: list[list[int]], budget: int, layout: Layout) -> None:
    assert sorted(i for mb in plan for i in mb) == list(range(len(trajs)))
    for mb in plan:
        assert micro_batch_cost([trajs[i] for i in mb], layout) <= budget


def test_the_budget_is_a_hard_cap():
    """verl's trap (a balancing heuristic put 14 tokens under a budget of 8): never here."""
    trajs = [fake(4, 3) for _ in range(8)]
    plan = plan_micro_batches(trajs, 8, PACKED)
    check_plan(trajs, plan, 8, PACKED)
    assert len(plan) == 8
    rng = random.Random(0)
    for _ in range(200):
        trajs = [fake(rng.randint(1, 40), rng.randint(0, 30)) for _ in range(rng.randint(1, 30))]
        budget = rng.randint(70, 200)
        for layout in (PACKED, PADDED):
            plan = plan_micro_batches(trajs, budget, layout)
            check_plan(trajs, plan, budget, layout)
            assert all(plan)


def test_loads_are_balanced_over_the_fewest_passes():
    trajs = [fake(n, 0) for n in (5, 5, 4, 4, 3, 3)]
    plan = plan_micro_batches(trajs, 12, PACKED)
    loads = sorted(micro_batch_cost([trajs[i] for i in mb], PACKED) for mb in plan)
    assert loads == [12, 12]
    # padded cost is rows x longest: the same lengths need more passes
    padded = plan_micro_batches(trajs, 12, PADDED)
    check_plan(trajs, padded, 12, PADDED)
    assert len(padded) == 3


def test_min_count_adds_zero_weight_passes():
    plan = plan_micro_batches([fake(3, 1), fake(2, 2)], 100, PACKED, min_count=3)
    assert len(plan) == 3 and sum(1 for mb in plan if not mb) == 1


def test_groups_stay_together_and_too_large_groups_are_cut():
    shared = Layout(packing=True, share_prompts=True)
    p1 = fake(20, 0).prompt
    p2 = fake(30, 0).prompt
    trajs = [fake(0, 5, p1), fake(0, 6, p2), fake(0, 5, p1), fake(0, 6, p2), fake(0, 7, p1)]
    plan = plan_micro_batches(trajs, 60, shared)
    check_plan(trajs, plan, 60, shared)
    assert sorted(map(sorted, plan)) == [[0, 2, 4], [1, 3]]  # each prompt runs once, with its responses
    # a group whose prompt + responses exceed the budget is cut into consecutive pieces that fit
    big = [fake(0, 10, p2) for _ in range(5)]
    plan = plan_micro_batches(big, 55, shared)
    check_plan(big, plan, 55, shared)
    assert sorted(map(sorted, plan)) == [[0, 1], [2, 3], [4]]


def test_a_trajectory_longer_than_the_budget_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"trajectory 1 has 50 tokens .* engine.max_tokens_per_micro_batch >= 50"
    ):
        plan_micro_batches([fake(5, 5), fake(30, 20)], 40, PACKED)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["engine.max_tokens_per_micro_batch=-1"], "must be >= 0"),
        (["engine.packing=true", "engine.attn_implementation=paged|sdpa"], "sdpa on CPU, flash_attention_2"),
        (
            ["engine.packing=true", "engine.attn_implementation=flash_attention_2"],
            "attn_implementation=sdpa or eager, or share_prompts=false",
        ),
        (["engine=megatron", "engine.packing=true"], "set engine=fsdp"),
        (
            ["engine.max_tokens_per_micro_batch=1000", "data.max_prompt_length=900"],
            r"engine.max_tokens_per_micro_batch >= 1412",
        ),
    ],
)
def test_configuration_mistakes_fail_before_the_job(args, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse(Config, args)


def test_configurations_that_work_validate():
    for args in (
        ["engine.packing=true"],
        ["engine.packing=true", "engine.share_prompts=false", "engine.attn_implementation=flash_attention_2"],
        ["engine.max_tokens_per_micro_batch=8192", "engine.packing=true"],
    ):
        cfg, _ = parse(Config, args)
        assert cfg.engine.packing


def grads_of_one_step(eng: FSDPEngine, trajs: list[Trajectory], mode: str) -> tuple[dict, dict]:
    """The gradients one train_step would apply (the optimizer does not step, so the engine can be reused)."""
    grads: dict[str, torch.Tensor] = {}

    def capture(*args, **kwargs):
        grads.update({n: p.grad.clone() for n, p in eng.policy.named_parameters() if p.grad is not None})

    eng.optimizer.step = capture
    loss_fn = make_loss_fn(
        AlgorithmConfig(loss_agg_mode=mode), MixConfig(), trajs, init_distributed(), on_policy=True
    )
    return grads, eng.train_step(trajs, loss_fn, need_entropy=False)


def budget_for(trajs: list[Trajectory]) -> int:
    """Room for about two of the longest trajectories: uneven passes of 1 to 4 trajectories."""
    return 2 * max(t.prompt.input_ids.numel() + t.response_len for t in trajs) + 7


@pytest.fixture(scope="module")
def split_engine(tiny_qwen25) -> FSDPEngine:
    return FSDPEngine(EngineConfig(lr=1e-4), tiny_qwen25, init_distributed(), total_steps=10)


@pytest.mark.parametrize("mode", loss_agg_modes())
def test_a_token_budget_step_equals_single_trajectory_passes(split_engine, tiny_qwen25, mode):
    """Every loss_agg_mode is normalised over the whole step, so the split does not change the gradient,
    padded or packed, with shared prompts (groups kept whole) or not."""
    trajs = make_trajectories(tiny_qwen25, per_prompt=3)
    for i, t in enumerate(trajs):
        t.advantage = float(i % 4) - 1.5
    cfg = split_engine.cfg
    cfg.max_tokens_per_micro_batch, cfg.micro_batch_size, cfg.packing = 0, 1, False
    want, m1 = grads_of_one_step(split_engine, trajs, mode)
    assert m1["num_micro_batches"] == len(trajs) and want
    for packing in (False, True):
        cfg.max_tokens_per_micro_batch, cfg.micro_batch_size, cfg.packing = budget_for(trajs), 8, packing
        got, m = grads_of_one_step(split_engine, trajs, mode)
        assert 2 <= m["num_micro_batches"] < len(trajs)
        assert set(got) == set(want)
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)


def test_token_budget_update_equals_micro_batch_size_one(tiny_qwen25):
    """The weights after one real update (AdamW, lr 1e-4) agree within 1e-6.

    Adam's first step moves an entry by ``lr · g / (|g| + eps)``: with the default eps 1e-8, float rounding
    of a gradient entry near 1e-8 (different summation orders) is amplified lr/eps = 1e4 times. eps = 1e-4
    keeps the comparison about the gradients, not that amplifier; entries still move by up to 1e-4."""
    before = {k: v.clone() for k, v in load_hf_model(tiny_qwen25).state_dict().items()}
    results = []
    budget = budget_for(make_trajectories(tiny_qwen25))
    for overrides in ({"micro_batch_size": 1}, {"max_tokens_per_micro_batch": budget}):
        eng = FSDPEngine(EngineConfig(lr=1e-4, **overrides), tiny_qwen25, init_distributed(), total_steps=10)
        eng.optimizer.param_groups[0]["eps"] = 1e-4
        trajs = make_trajectories(tiny_qwen25)
        loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, init_distributed(), on_policy=True)
        metrics = eng.train_step(trajs, loss_fn, need_entropy=False)
        results.append((metrics, {k: v.clone() for k, v in eng.rollout_weights()}))
    (m1, w1), (mt, wt) = results
    assert m1["num_micro_batches"] == 8 and 2 <= mt["num_micro_batches"] < 8
    assert max((w1[k] - before[k]).abs().max().item() for k in before if k in w1) > 5e-5
    for k in w1:
        torch.testing.assert_close(wt[k], w1[k], atol=1e-6, rtol=0)


@pytest.mark.integration
def test_two_ranks_with_uneven_shares_agree_and_update_like_one(tiny_qwen25, tmp_path):
    """DP=2 with 6 and 2 trajectories under a token budget (packed, shared prompts): both ranks run the same
    number of passes, and the gradients equal one process holding all 8."""
    script = Path(__file__).with_name("microbatch_dp_worker.py")
    outs = {}
    for world in (1, 2):
        out = tmp_path / f"w{world}.pt"
        procs = []
        for rank in range(world):
            env = {
                **os.environ,
                "RANK": str(rank),
                "WORLD_SIZE": str(world),
                "LOCAL_RANK": str(rank),
                "LOCAL_WORLD_SIZE": str(world),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(29641 + world),
                "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}",
            }
            procs.append(subprocess.Popen([sys.executable, str(script), str(tiny_qwen25), str(out)], env=env))
        assert all(p.wait(timeout=600) == 0 for p in procs)
        outs[world] = torch.load(out)
    counts = outs[2].pop("passes")
    assert counts[0] == counts[1] and outs[1].pop("passes")[0] >= 2
    assert set(outs[1]) == set(outs[2]) and outs[1]
    for k in outs[1]:
        torch.testing.assert_close(outs[2][k], outs[1][k], atol=1e-6, rtol=1e-4)
