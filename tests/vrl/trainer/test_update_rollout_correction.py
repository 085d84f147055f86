"""Rollout correction wired into the update: the rollout engine's log-probs reach the micro-batch, the loss
weighs each token by the configured TIS/MIS weight of π_train / π_rollout, offline rows are left alone, and
the step reports the mismatch metrics (rollout_corr/*)."""

from __future__ import annotations

import math

import pytest
import torch

from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.objective import actor_loss
from vrl.batch import Prompt, Trajectory, collate
from vrl.config import ConfigError, parse
from vrl.distributed import init_distributed
from vrl.rollout.base import Completion
from vrl.trainer.collect import _trajectories
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn, optimize

PROMPT = Prompt(record={"problem_type": "boolean"}, input_ids=torch.tensor([5, 6]), vision={}, text="")
#: per-token log-ratios logp_train - logp_rollout of row 0: ratios e^0.1, e^-0.2, e^1 (> cap 2)
LOG_RATIOS = [0.1, -0.2, 1.0]
CAP = 2.0


def _batch() -> tuple[list[Trajectory], torch.Tensor]:
    """Two sampled rows with rollout log-probs, one offline row without; the trainer's log-probs (B, 3)."""
    train = torch.tensor([[-1.0, -0.5, -2.0], [-0.3, -0.7, 0.0], [-1.2, -0.1, 0.0]])
    rows = [
        Trajectory(PROMPT, torch.tensor([1, 2, 3]), "", advantage=1.0),
        Trajectory(PROMPT, torch.tensor([1, 2]), "", advantage=-1.0),
        Trajectory(PROMPT, torch.tensor([4, 4]), "", advantage=0.5, offpolicy=True),
    ]
    rows[0].rollout_logp = train[0] - torch.tensor(LOG_RATIOS)
    rows[1].rollout_logp = train[1, :2].clone()  # identical: ratio 1
    return rows, train


def _loss(cfg: AlgorithmConfig, with_rollout_logp: bool = True) -> tuple[torch.Tensor, dict, torch.Tensor]:
    trajs, train = _batch()
    if not with_rollout_logp:
        for t in trajs:
            t.rollout_logp = None
    mb = collate(trajs, pad_id=0)
    logp = train.clone().requires_grad_(True)
    loss_fn = make_loss_fn(cfg, MixConfig(), trajs, init_distributed(), on_policy=True)
    loss, metrics = loss_fn(logp, None, mb)
    loss.backward()
    return loss, metrics, logp.grad


def test_collect_keeps_the_engines_log_probs():
    comps = [Completion([3, 4], "", False, logprobs=[-0.5, -1.5]), Completion([3], "", False)]
    a, b = _trajectories(PROMPT, comps, group=0)
    assert torch.equal(a.rollout_logp, torch.tensor([-0.5, -1.5])) and b.rollout_logp is None
    with pytest.raises(RuntimeError, match="2 log-probs for 1 response tokens"):
        _trajectories(PROMPT, [Completion([3], "", False, logprobs=[-0.5, -1.5])], group=0)


def test_micro_batch_marks_rows_without_rollout_log_probs():
    trajs, _ = _batch()
    mb = collate(trajs, pad_id=0)
    assert mb.rollout_logp.shape == (3, 3)
    assert torch.isnan(mb.rollout_logp[2]).all() and not torch.isnan(mb.rollout_logp[:2]).any()
    for t in trajs:
        t.rollout_logp = None
    assert collate(trajs, pad_id=0).rollout_logp is None


@pytest.mark.parametrize("mode", ["tis", "mis"])
def test_loss_weighs_tokens_by_the_capped_ratio(mode):
    cfg = AlgorithmConfig(rollout_correction=mode, rollout_correction_cap=CAP)
    loss, metrics, grad = _loss(cfg)
    # the same loss built by hand: row 0's weights per mode, row 1 weight 1, the offline row untouched
    trajs, train = _batch()
    mb = collate(trajs, pad_id=0)
    ratios = [math.exp(r) for r in LOG_RATIOS]
    row0 = [min(r, CAP) for r in ratios] if mode == "tis" else [r if r <= CAP else 0.0 for r in ratios]
    weights = torch.tensor([row0, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    logp = train.clone().requires_grad_(True)
    expected, _ = actor_loss(
        cfg, logp, logp.detach(), mb.advantages, mb.token_mask, offpolicy_mask=mb.offpolicy,
        offpolicy_gamma=MixConfig().gamma, token_weights=weights, num_tokens=7.0, num_seqs=3.0,
    )  # fmt: skip
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grad, logp.grad)
    if mode == "mis":
        assert grad[0, 2] == 0.0  # the token above the cap is dropped
    # metrics over the 5 sampled tokens (row 0's three, row 1's two; the offline row is not counted)
    all_ratios = [*ratios, 1.0, 1.0]
    assert metrics["rollout_corr/is_ratio_mean"] == pytest.approx(sum(all_ratios) / 5)
    assert metrics["rollout_corr/is_ratio_max"] == pytest.approx(math.e)
    assert metrics["rollout_corr/capped_frac"] == pytest.approx(1 / 5)
    assert metrics["rollout_corr/kl_k1"] == pytest.approx(-sum(LOG_RATIOS) / 5)
    k3 = sum(math.expm1(r) - r for r in LOG_RATIOS) / 5
    assert metrics["rollout_corr/kl"] == pytest.approx(k3)


def test_none_mode_reports_the_mismatch_without_changing_the_loss():
    loss, metrics, grad = _loss(AlgorithmConfig(rollout_correction="none"))
    plain_loss, plain_metrics, plain_grad = _loss(AlgorithmConfig(), with_rollout_logp=False)
    torch.testing.assert_close(loss, plain_loss)
    torch.testing.assert_close(grad, plain_grad)
    assert metrics["rollout_corr/capped_frac"] == pytest.approx(1 / 5)
    assert not any(k.startswith("rollout_corr/") for k in plain_metrics)


class RecordingEngine:
    """A training engine double: runs the loss once on fixed log-probs and returns its metrics."""

    def __init__(self, train: torch.Tensor) -> None:
        self.train = train

    def train_step(self, trajs, loss_fn, *, need_entropy):
        _, metrics = loss_fn(self.train[: len(trajs)].clone().requires_grad_(True), None, collate(trajs, 0))
        return metrics


def test_optimize_keeps_the_rollout_corr_names():
    trajs, train = _batch()
    cfg = AlgorithmConfig(rollout_correction="tis", rollout_correction_cap=CAP)
    out = optimize(
        RecordingEngine(train), trajs, cfg, MixConfig(), init_distributed(), num_updates=1, ppo_epochs=1,
        on_policy=True,
    )  # fmt: skip
    assert "rollout_corr/kl" in out and "actor/pg_loss" in out
    assert not any(k.startswith("actor/rollout_corr") for k in out)


def test_config_validates_the_cap():
    cfg, _ = parse(AlgorithmConfig, ["rollout_correction=mis", "rollout_correction_cap=3"])
    assert (cfg.rollout_correction, cfg.rollout_correction_cap) == ("mis", 3.0)
    with pytest.raises(ValueError, match="rollout_correction_cap must be >= 1"):
        parse(AlgorithmConfig, ["rollout_correction=tis", "rollout_correction_cap=0.5"])
    with pytest.raises(ConfigError, match="Valid choices: mis, none, tis"):
        parse(AlgorithmConfig, ["rollout_correction=seq"])
