"""Checkpoints that resume at any layout: the resharding reader against the HF mapping (no processes), exact
resumption in one process (either optimizer), and, multi-process, a run saved at DP=2 resuming at TP=2 and
PP=2 with the same first-step metrics as resuming at DP=2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_ops import build_engine, grpo_update
from launch import run_ranks
from mm_batch import multimodal_trajectories
from parity import loss_total
from scale_scenarios import resume

from vrl.engines.megatron import bridge, checkpoint
from vrl.engines.megatron.hf_io import HFCheckpoint
from vrl.models.loading import load_processor

RESUME_TOL = 1e-5  # the bound on the first step's metrics after a resume


def _saved_layout(ckpt: HFCheckpoint, tp: int, pp: int, path: Path, moments: dict) -> None:
    """A checkpoint written at TP × PP straight from HF tensors: weights, "moments" (random, HF-shaped)."""
    spec = ckpt.spec
    vision = [n for n in ckpt.shapes() if n.startswith(bridge.HF_VISION)]
    for pp_rank in range(pp):
        rules = bridge.stage_rules(spec, pp, pp_rank)
        for tp_rank in range(tp):
            out: dict[str, dict] = {kind: {} for kind in checkpoint.KINDS}
            for name, rule in rules.items():
                for kind, source in (("model", dict(zip(rule.hf, ckpt.read(rule.hf)))), ("exp_avg", moments)):
                    hf = [source[h] for h in rule.hf]
                    out[kind]["gpt." + name] = bridge.to_megatron(rule, hf, spec, tp_rank, tp)
                out["step"]["gpt." + name] = torch.tensor(float(pp_rank + 3))
            if pp_rank == 0:
                for n in vision:
                    out["model"]["vision." + n[len(bridge.HF_VISION) :]] = ckpt.read([n])[0]
            for kind, tensors in out.items():
                checkpoint.write_shard(path, kind, tp_rank, pp_rank, tensors)
    checkpoint.write_manifest(path, tp, pp, 1, {"scheduler": {}, "lr": 1e-5})


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_reader_reshards_any_saved_layout(name, mg_models, tmp_path):
    ckpt = HFCheckpoint(mg_models[name])
    spec = ckpt.spec
    gen = torch.Generator().manual_seed(0)
    moments = {n: torch.randn(s, generator=gen) for n, s in ckpt.shapes().items()}
    moments[bridge.HF_LM_HEAD] = (
        moments[bridge.HF_EMBED] if spec.tied_embeddings else moments[bridge.HF_LM_HEAD]
    )
    _saved_layout(ckpt, 2, 2, tmp_path, moments)
    reader = checkpoint.CheckpointReader(tmp_path, spec)
    checked = 0
    for tp, pp in ((1, 1), (2, 1), (1, 2), (2, 2)):
        for pp_rank in range(pp):
            for tp_rank in range(tp):
                for mname, rule in bridge.stage_rules(spec, pp, pp_rank).items():
                    args = ("gpt." + mname, rule, tp_rank, tp, pp_rank, pp)
                    want = bridge.to_megatron(rule, ckpt.read(rule.hf), spec, tp_rank, tp)
                    assert torch.equal(reader.tensor("model", *args), want), (tp, pp, mname)
                    want = bridge.to_megatron(rule, [moments[h] for h in rule.hf], spec, tp_rank, tp)
                    assert torch.equal(reader.tensor("exp_avg", *args), want), (tp, pp, mname)
                    same = (tp, pp) == (2, 2)  # read as saved, else from the stage owning its HF tensors
                    stage = pp_rank if same else reader._source[rule.hf[0]][0]
                    assert float(reader.tensor("step", *args)) == stage + 3
                    assert reader.tensor("exp_avg_sq", *args) is None  # absent state stays absent
                    checked += 1
    assert checked > 100


def test_old_format_and_incomplete_checkpoints_are_explained(mg_models, tmp_path):
    spec = HFCheckpoint(mg_models["tiny-qwen2.5-vl"]).spec
    with pytest.raises(ValueError, match=r"no layout\.json"):
        checkpoint.CheckpointReader(tmp_path, spec)
    (tmp_path / "layout.json").write_text('{"tensor_parallel_size": 2, "pipeline_parallel_size": 1}')
    with pytest.raises(ValueError, match="hf/ export"):
        checkpoint.CheckpointReader(tmp_path, spec)


@pytest.mark.parametrize(
    ("saved", "resumed"),
    [({}, {}), ({}, {"distributed_optimizer": True}), ({"distributed_optimizer": True}, {})],
)
def test_resume_continues_exactly_one_process(saved, resumed, one_process, mg_models, tmp_path):
    """The step after a resume equals the step the saving run would have taken (either optimizer)."""
    path = mg_models["tiny-qwen2.5-vl"]
    trajs = multimodal_trajectories(load_processor(path))
    engine = build_engine(saved, one_process, path)
    grpo_update(engine, trajs, one_process)
    engine.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir())[-2:] == [
        "state.json",
        "step_tp00_pp000.safetensors",
    ]
    fresh = build_engine(resumed, one_process, path)
    fresh.load(tmp_path / "ckpt")
    assert fresh.lr == engine.lr and fresh.scheduler.last_epoch == engine.scheduler.last_epoch == 1
    a, b = grpo_update(engine, trajs, one_process), grpo_update(fresh, trajs, one_process)
    for key in ("loss", "grad_norm", "lr"):
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    wa, wb = dict(engine.rollout_weights()), dict(fresh.rollout_weights())
    worst = max(float((wa[n] - wb[n]).abs().max()) for n in wa)
    assert worst == 0 if saved == resumed else worst < 1e-6, worst


@pytest.mark.integration
def test_resume_at_another_layout_logs_the_same_first_step(one_process, mg_models, tmp_path):
    """Saved at TP1 × PP1 × DP2 with the distributed optimizer; resumed at TP2 (distributed optimizer),
    PP2 and TP1 × DP1 (plain optimizer): the first step's metrics and weights equal those of resuming at
    the saved layout."""
    model = str(mg_models["tiny-qwen2.5-vl"])
    ckpt = tmp_path / "ckpt"
    ref = run_ranks(
        "save_then_resume", 2, tmp_path / "dp2", model=model, ckpt=str(ckpt), distributed_optimizer=True
    )
    runs = {
        "tp2": run_ranks(
            "resume", 2, tmp_path / "tp2", model=model, ckpt=str(ckpt), tp=2, distributed_optimizer=True
        ),
        "pp2": run_ranks(
            "resume", 2, tmp_path / "pp2", model=model, ckpt=str(ckpt), pp=2, num_microbatches=2
        ),
        "tp1": [resume({"model": model, "ckpt": str(ckpt)}, one_process, Path(model), tmp_path)],
    }
    want = ref[0]
    for name, results in runs.items():
        for got in results:
            assert got["lr_loaded"] == want["lr_loaded"]
            assert loss_total(results) == pytest.approx(loss_total(ref), abs=RESUME_TOL), name
            assert got["metrics"]["grad_norm"] == pytest.approx(want["metrics"]["grad_norm"], rel=RESUME_TOL)
            assert got["metrics"]["lr"] == want["metrics"]["lr"]
            worst = max(float((got["weights"][n] - want["weights"][n]).abs().max()) for n in want["weights"])
            assert worst < RESUME_TOL, (name, worst)
        print(
            f"resume at {name}: loss {loss_total(results):.7f} vs {loss_total(ref):.7f}, weights max diff {worst:.1e}"
        )
