"""The update phase's wiring of the new estimators and the KL controller: token-level advantages reach
the trajectories, the micro-batches and the loss; ReMax reads the greedy baseline; the adaptive coefficient
is what the loss uses and is adapted from the step's measured KL."""

from __future__ import annotations

import math

import pytest
import torch

from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.objective import actor_loss
from vrl.batch import Prompt, Trajectory, collate
from vrl.distributed import init_distributed
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import assign_advantages, make_kl_controller, make_loss_fn, step_kl_controller


def _prompt() -> Prompt:
    return Prompt(record={"problem_type": "boolean"}, input_ids=torch.tensor([5, 6]), vision={}, text="")


def _traj(prompt: Prompt, length: int, overall: float, group: int, **kw) -> Trajectory:
    return Trajectory(
        prompt=prompt,
        response_ids=torch.arange(1, length + 1),
        response_text="",
        group=group,
        rewards={"overall": overall, "accuracy": overall, "format": 1.0},
        **kw,
    )


def test_reinforce_plus_plus_with_a_per_token_kl_reward():
    cfg = AlgorithmConfig(advantage="reinforce_plus_plus", kl="k1", kl_coef=0.5, kl_as="reward", gamma=1.0)
    p = _prompt()
    trajs = [_traj(p, 2, 1.0, 0), _traj(p, 1, 0.0, 0)]
    trajs[0].old_logp, trajs[0].ref_logp = torch.tensor([0.0, 0.0]), torch.tensor([-0.2, 0.0])
    trajs[1].old_logp, trajs[1].ref_logp = torch.tensor([0.0]), torch.tensor([-0.4])
    assert assign_advantages(trajs, cfg, max_response_length=8) == {}
    # token rewards -0.5 * k1: row 0 → [-0.1, 0 + 1]; row 1 → [-0.2 + 0]; returns (gamma 1): [0.9, 1.0],
    # [-0.2]; pool mean 1.7 / 3; squared deviations (0.9-m)^2 + (1-m)^2 + (-0.2-m)^2, unbiased / 2
    pool = torch.tensor([0.9, 1.0, -0.2], dtype=torch.float64)
    mean, std = pool.mean().item(), pool.std().item() + cfg.eps
    assert isinstance(trajs[0].advantage, torch.Tensor) and trajs[0].advantage.shape == (2,)
    torch.testing.assert_close(trajs[0].advantage, torch.tensor([(0.9 - mean) / std, (1.0 - mean) / std]))
    torch.testing.assert_close(trajs[1].advantage, torch.tensor([(-0.2 - mean) / std]))
    mb = collate(trajs, pad_id=0)
    assert mb.advantages.shape == (2, 2) and mb.advantages[1, 1].item() == 0.0  # padded


def test_outcome_estimators_still_write_floats_and_collate_to_b():
    p = _prompt()
    trajs = [_traj(p, 2, 1.0, 0), _traj(p, 3, 0.0, 0)]
    assign_advantages(trajs, AlgorithmConfig(advantage="grpo_passk"), max_response_length=8)
    # best 1 over runner-up 0, divided by the unbiased std sqrt(0.5)
    assert trajs[0].advantage == pytest.approx(1 / (math.sqrt(0.5) + 1e-6)) and trajs[1].advantage == 0.0
    assert collate(trajs, pad_id=0).advantages.shape == (2,)


def test_remax_uses_the_shaped_reward_of_the_greedy_response():
    cfg = AlgorithmConfig(advantage="remax", overlong_buffer_len=2)
    p, q = _prompt(), _prompt()
    greedy_p = _traj(p, 1, 0.5, -1)
    greedy_q = _traj(q, 4, 1.0, -1)  # at the max length 4 with a 2-token buffer: penalty -1 → baseline 0
    trajs = [
        _traj(p, 2, 1.0, 0, baseline=greedy_p),
        _traj(p, 1, 0.0, 0, baseline=greedy_p),
        _traj(q, 1, 1.0, 1, baseline=greedy_q),
    ]
    metrics = assign_advantages(trajs, cfg, max_response_length=4)
    torch.testing.assert_close(trajs[0].advantage, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(trajs[1].advantage, torch.tensor([-0.5]))
    torch.testing.assert_close(trajs[2].advantage, torch.tensor([1.0]))
    assert metrics == {"reward/greedy_baseline": pytest.approx(0.25)}  # mean over prompts: (0.5 + 0) / 2
    trajs[2].baseline = None
    with pytest.raises(ValueError, match="no greedy baseline"):
        assign_advantages(trajs, cfg, max_response_length=4)


def test_loss_fn_passes_per_token_advantages_and_the_controller_coefficient():
    cfg = AlgorithmConfig(kl="k1", kl_coef=0.1)
    p = _prompt()
    trajs = [_traj(p, 3, 1.0, 0), _traj(p, 2, 0.0, 0)]
    trajs[0].advantage = torch.tensor([1.0, -0.5, 0.25])
    trajs[1].advantage = -1.0
    for t in trajs:
        t.old_logp = torch.full((t.response_len,), -1.0)
        t.ref_logp = torch.full((t.response_len,), -1.5)
    mb = collate(trajs, pad_id=0)
    logp = torch.tensor([[-0.9, -1.1, -1.0], [-1.2, -0.8, 0.0]], requires_grad=True)
    loss_fn = make_loss_fn(cfg, MixConfig(), trajs, init_distributed(), kl_coef=0.7)
    loss, metrics = loss_fn(logp, None, mb)
    want, _ = actor_loss(
        cfg,
        logp,
        mb.old_logp,
        torch.tensor([[1.0, -0.5, 0.25], [-1.0, -1.0, 0.0]]),
        mb.token_mask,
        ref_logp=mb.ref_logp,
        kl_coef=0.7,
        num_tokens=5.0,
        num_seqs=2.0,
    )
    assert loss.item() == pytest.approx(want.item())
    assert metrics["kl_coef"] == 0.7


def test_adaptive_controller_follows_the_measured_kl():
    cfg = AlgorithmConfig(kl="k3", kl_coef=0.1, kl_ctrl="adaptive", kl_target=0.1, kl_horizon=100)
    ctrl = make_kl_controller(cfg)
    step_kl_controller(ctrl, {"actor/kl": 0.15, "actor/pg_loss": 1.0}, num_samples=10)
    assert ctrl.value == pytest.approx(0.102)  # x (1 + 0.2 * 10 / 100)
    step_kl_controller(ctrl, {"actor/pg_loss": 1.0}, num_samples=10)  # no KL measured: unchanged
    assert ctrl.value == pytest.approx(0.102)
    fixed = make_kl_controller(AlgorithmConfig(kl="k3", kl_coef=0.1))
    step_kl_controller(fixed, {"actor/kl": 5.0}, num_samples=10)
    assert fixed.value == 0.1


def test_token_advantages_constant_per_row_update_the_engine_like_scalars(tiny_qwen25):
    """End to end through the FSDP engine: (B, T) advantages flow through collate and the loss; rows of
    constant per-token advantages give exactly the gradients of the scalar ones."""
    from vrl_fixtures import make_trajectories

    from vrl.engines.config import EngineConfig
    from vrl.engines.fsdp import FSDPEngine

    grads = []
    for per_token in (False, True):
        torch.manual_seed(0)
        eng = FSDPEngine(
            EngineConfig(lr=1e-3, micro_batch_size=3), tiny_qwen25, init_distributed(), total_steps=2
        )
        captured: dict[str, torch.Tensor] = {}
        original = eng.optimizer.step

        def capture(*args, _orig=original, _out=captured, _eng=eng, **kwargs):
            _out.update({n: p.grad.clone() for n, p in _eng.policy.named_parameters() if p.grad is not None})
            return _orig(*args, **kwargs)

        eng.optimizer.step = capture
        trajs = make_trajectories(tiny_qwen25)
        for i, t in enumerate(trajs):
            a = float(i % 3) - 1.0
            t.advantage = torch.full((t.response_len,), a) if per_token else a
        loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, init_distributed(), on_policy=True)
        eng.train_step(trajs, loss_fn, need_entropy=False)
        grads.append(captured)
    assert grads[0] and set(grads[0]) == set(grads[1])
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=0, rtol=0)
