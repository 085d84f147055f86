"""The FSDP engine: log-probs equal the HF model's, micro-batching does not change the update, state
round-trips exactly, exports load in transformers, and two ranks update like one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import collate
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.models.loading import load_hf_model
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

ROOT = Path(__file__).resolve().parents[3]


def engine(model: Path, **overrides) -> FSDPEngine:
    cfg = EngineConfig(lr=1e-3, **overrides)
    return FSDPEngine(cfg, model, init_distributed(), total_steps=10)


def with_old_logp(eng: FSDPEngine, trajs):
    for t, lp in zip(trajs, eng.compute_logprobs(trajs).logp):
        t.old_logp = lp
    return trajs


def step(eng: FSDPEngine, trajs) -> dict:
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, init_distributed())
    return eng.train_step(trajs, loss_fn, need_entropy=False)


def weights(eng: FSDPEngine) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in eng.rollout_weights()}


def test_logprobs_equal_the_hf_model(tiny_qwen25):
    trajs = make_trajectories(tiny_qwen25)
    eng = engine(tiny_qwen25, micro_batch_size=3)
    got = eng.compute_logprobs(trajs, with_entropy=True)
    ref = load_hf_model(tiny_qwen25).eval()
    mb = collate(trajs, eng.pad_id)
    with torch.no_grad():
        logits = ref(**mb.model_inputs()).logits.float()
    for i, t in enumerate(trajs):
        start = t.prompt.input_ids.numel() - 1
        want = torch.log_softmax(logits[i, start : start + t.response_len], -1)
        want = want.gather(-1, t.response_ids[:, None]).squeeze(-1)
        torch.testing.assert_close(got.logp[i], want, atol=1e-5, rtol=0)
        assert got.entropy[i].shape == want.shape and bool((got.entropy[i] > 0).all())


def capture_grads(eng: FSDPEngine) -> dict[str, torch.Tensor]:
    """Record the gradients the optimizer is about to apply (Adam's sign-like first step would hide them)."""
    grads: dict[str, torch.Tensor] = {}
    original = eng.optimizer.step

    def step(*args, **kwargs):
        grads.update({n: p.grad.clone() for n, p in eng.policy.named_parameters() if p.grad is not None})
        return original(*args, **kwargs)

    eng.optimizer.step = step
    return grads


def test_micro_batch_size_does_not_change_the_update(tiny_qwen25):
    results = []
    for mbs in (1, 8):
        eng = engine(tiny_qwen25, micro_batch_size=mbs)
        grads = capture_grads(eng)
        trajs = with_old_logp(eng, make_trajectories(tiny_qwen25))
        results.append((grads, step(eng, trajs)))
    (g1, m1), (g8, m8) = results
    assert m1["num_micro_batches"] == 8 and m8["num_micro_batches"] == 1
    assert m1["grad_norm"] == pytest.approx(m8["grad_norm"], rel=1e-5)
    assert set(g1) == set(g8) and g1
    for name in g1:
        torch.testing.assert_close(g1[name], g8[name], atol=1e-6, rtol=1e-4)


def test_an_update_without_old_logprobs_equals_one_with_them(tiny_qwen25):
    """One optimizer step per batch: the loss may use the update's own detached log-probs instead of a
    separate no-grad pass (the trainer skips that pass then); the gradients are the same."""
    results = []
    for old_pass in (True, False):
        torch.manual_seed(0)
        eng = engine(tiny_qwen25, micro_batch_size=3)
        grads = capture_grads(eng)
        trajs = make_trajectories(tiny_qwen25)
        for i, t in enumerate(trajs):
            t.advantage = float(i % 3) - 1.0
        if old_pass:
            with_old_logp(eng, trajs)
        assert all((t.old_logp is None) != old_pass for t in trajs)
        loss_fn = make_loss_fn(
            AlgorithmConfig(), MixConfig(), trajs, init_distributed(), on_policy=not old_pass
        )
        results.append((grads, eng.train_step(trajs, loss_fn, need_entropy=True)))
    (ga, ma), (gb, mb) = results
    with pytest.raises(ValueError, match="old log-probs missing"):
        step(engine(tiny_qwen25), make_trajectories(tiny_qwen25))
    assert ma["loss"] == pytest.approx(mb["loss"], rel=1e-5) and ma["loss"] != 0
    assert ma["entropy"] == pytest.approx(mb["entropy"], rel=1e-6) and ma["entropy"] > 0
    assert set(ga) == set(gb) and ga
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], atol=1e-6, rtol=1e-4)


def test_a_step_changes_parameters_and_save_load_restores_them(tiny_qwen25, tmp_path):
    torch.manual_seed(0)
    eng = engine(tiny_qwen25)
    before = weights(eng)
    trajs = with_old_logp(eng, make_trajectories(tiny_qwen25))
    metrics = step(eng, trajs)
    after = weights(eng)
    assert metrics["grad_norm"] > 0
    assert any(not torch.equal(before[k], after[k]) for k in before)
    eng.save(tmp_path / "ckpt")
    next_a = (step(eng, trajs), weights(eng))
    fresh = engine(tiny_qwen25)
    fresh.load(tmp_path / "ckpt")
    for k, v in fresh.rollout_weights():
        assert torch.equal(v, after[k]), k
    next_b = (step(fresh, trajs), weights(fresh))
    assert next_a[0]["loss"] == next_b[0]["loss"]
    for k in next_a[1]:
        assert torch.equal(next_a[1][k], next_b[1][k]), k  # optimizer state restored too


def test_export_loads_in_transformers(tiny_qwen25, tmp_path):
    eng = engine(tiny_qwen25)
    step(eng, with_old_logp(eng, make_trajectories(tiny_qwen25)))
    eng.export_hf(tmp_path / "hf")
    exported = load_hf_model(tmp_path / "hf").state_dict()
    for k, v in eng.rollout_weights():
        if k in exported:
            assert torch.equal(exported[k], v), k
    assert (tmp_path / "hf" / "tokenizer.json").exists()
    from transformers import AutoProcessor

    AutoProcessor.from_pretrained(tmp_path / "hf")


@pytest.mark.integration
def test_two_ranks_update_like_one(tiny_qwen25, tmp_path):
    """DP=2 (gloo, each rank half of the groups) and DP=1 apply the same gradients."""
    script = Path(__file__).with_name("fsdp_dp_worker.py")
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
                "MASTER_PORT": str(29611 + world),
                "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}",
            }
            procs.append(subprocess.Popen([sys.executable, str(script), str(tiny_qwen25), str(out)], env=env))
        assert all(p.wait(timeout=600) == 0 for p in procs)
        outs[world] = torch.load(out)
    assert set(outs[1]) == set(outs[2]) and outs[1]
    for k in outs[1]:
        torch.testing.assert_close(outs[2][k], outs[1][k], atol=1e-6, rtol=1e-4)
