"""Bucketed weight sync: buckets respect the size, the stream releases a bucket before the next is
gathered, every tensor arrives in order, and an update reaches the hf rollout engine through it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import torch
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.rollout.hf import HFRollout
from vrl.rollout.sync import SyncStats, chunk_buckets, stream_buckets, sync_weights, weight_buckets
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

MB = 2**20


def _tensors(sizes_mb: list[float]) -> list[tuple[str, torch.Tensor]]:
    return [(f"t{i}", torch.zeros(int(s * MB) // 4)) for i, s in enumerate(sizes_mb)]


def test_chunks_fill_buckets_in_order_and_keep_big_tensors_alone():
    weights = _tensors([1, 1, 3, 0.5, 0.5, 0.5, 2])
    buckets = list(chunk_buckets(iter(weights), 2 * MB))
    assert [[n for n, _ in b] for b in buckets] == [["t0", "t1"], ["t2"], ["t3", "t4", "t5"], ["t6"]]
    with pytest.raises(ValueError, match="bucket_bytes must be >= 1"):
        list(chunk_buckets(iter(weights), 0))


def test_stream_drops_each_bucket_before_the_next_is_gathered():
    """The gather of bucket k+1 must find bucket k's tensors gone (the consumer keeps nothing)."""
    alive_at_gather: list[int] = []
    refs: list[weakref.ref] = []

    def gathered() -> Iterator[list[tuple[str, torch.Tensor]]]:
        for k in range(4):
            gc.collect()
            alive_at_gather.append(sum(r() is not None for r in refs))
            bucket = [(f"b{k}.{j}", torch.full((1000,), float(k))) for j in range(3)]
            refs.extend(weakref.ref(t) for _, t in bucket)
            yield bucket
            del bucket

    stats = SyncStats()
    stream = stream_buckets(gathered(), stats)
    names = []
    while (item := next(stream, None)) is not None:  # a consumer that keeps nothing
        names.append(item[0])
        del item
    assert names == [f"b{k}.{j}" for k in range(4) for j in range(3)]
    assert alive_at_gather == [0, 0, 0, 0]
    assert (stats.buckets, stats.tensors, stats.bytes, stats.max_bucket_bytes) == (4, 12, 48_000, 12_000)


class PerTensorEngine:
    """An engine with only the per-tensor stream: the fallback chunks it."""

    def __init__(self, weights):
        self.weights = weights

    def rollout_weights(self):
        return iter(self.weights)


def test_engines_without_buckets_are_chunked():
    weights = _tensors([1, 1, 1])
    assert [len(b) for b in weight_buckets(PerTensorEngine(weights), 2 * MB)] == [2, 1]


def test_an_update_reaches_the_hf_rollout_through_buckets(tiny_qwen25):
    dist_ctx = init_distributed()
    engine = FSDPEngine(EngineConfig(lr=5e-3), tiny_qwen25, dist_ctx, total_steps=2)
    trajs = make_trajectories(tiny_qwen25)
    engine.train_step(
        trajs, make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, dist_ctx, True), need_entropy=False
    )
    rollout = HFRollout(tiny_qwen25, torch.device("cpu"))
    params = dict(rollout.model.named_parameters())
    trained = dict(engine.rollout_weights())
    assert any(not torch.equal(params[n], t) for n, t in trained.items() if n in params)
    stats = sync_weights(rollout, engine, bucket_mb=1)
    assert stats.buckets > 1 and stats.tensors == len(trained)
    largest = max(t.numel() * t.element_size() for t in trained.values())
    assert stats.max_bucket_bytes <= max(MB, largest)  # a tensor above the size is a bucket of its own
    for name, tensor in trained.items():
        if name in params:
            assert torch.equal(params[name], tensor), name
    # a rank without a rollout engine still walks (gathers) every bucket
    assert sync_weights(None, engine, bucket_mb=1).tensors == len(trained)
