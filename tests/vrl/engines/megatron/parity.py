"""Assertions shared by the single- and multi-process engine tests (results of ``dist_worker.suite``)."""

from __future__ import annotations

from pathlib import Path

import torch

LOGPROB_TOL = 1e-4  # the bound; measured ~1e-6 in fp32
WEIGHT_TOL = 1e-5  # after one AdamW step at lr=1e-5 (a wrong-sign update would differ by 2e-5)


def check_logprobs(result: dict, reference: tuple) -> float:
    """This rank's log-probs and entropy vs the HF model's (for the trajectories of its data shard)."""
    _, ref_logp, ref_ent, lens = reference
    rows = range(result["dp_rank"], len(lens), result["dp_size"])
    worst = 0.0
    assert len(result["logp"]) == len(rows)
    for got, got_ent, i in zip(result["logp"], result["entropy"], rows):
        assert got.shape == (lens[i],)
        worst = max(worst, float((got - ref_logp[i, : lens[i]]).abs().max()))
        worst = max(worst, float((got_ent - ref_ent[i, : lens[i]]).abs().max()))
    assert worst < LOGPROB_TOL, worst
    return worst


def loss_total(results: list[dict]) -> float:
    """The mini-batch loss: per rank the sum of its micro-batch losses (equal-size micro-batches), averaged
    over data-parallel replicas (tensor/pipeline peers report the same value)."""
    per_replica = {r["dp_rank"]: r["metrics"]["loss"] * r["metrics"]["num_micro_batches"] for r in results}
    return sum(per_replica.values()) / len(per_replica)


def check_update(result: dict, fsdp: dict, total: float) -> float:
    """Same loss (``total``, see :func:`loss_total`), grad norm, updated weights and log-probs as FSDP."""
    assert abs(total - loss_total([fsdp])) < 1e-6, (total, loss_total([fsdp]))
    assert abs(result["metrics"]["grad_norm"] / fsdp["metrics"]["grad_norm"] - 1) < 1e-4
    ours, theirs = result["weights"], fsdp["weights"]
    assert set(theirs) == set(ours)
    worst = max(float((ours[n] - theirs[n]).abs().max()) for n in ours)
    assert worst < WEIGHT_TOL, worst
    moved = max(float((ours[n] - fsdp["initial"][n]).abs().max()) for n in ours)
    assert moved > 5 * worst  # the update is far larger than the disagreement
    rows = range(result["dp_rank"], len(fsdp["after"]), result["dp_size"])
    for got, i in zip(result["after"], rows):
        assert float((got - fsdp["after"][i]).abs().max()) < LOGPROB_TOL
    return worst


def check_export_bit_exact(export_dir: Path, original: Path) -> int:
    """Every tensor of the export equals the original checkpoint's, bit for bit (names normalised)."""
    from vrl.engines.megatron.hf_io import HFCheckpoint

    a, b = HFCheckpoint(export_dir), HFCheckpoint(original)
    names = sorted(set(a.shapes()))
    assert names == sorted(b.shapes())
    for name in names:
        (x,), (y,) = a.read([name]), b.read([name])
        assert torch.equal(x, y), name
    return len(names)
