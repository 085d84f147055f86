"""Checks of ``rollout_weight_buckets`` shared by the in-process and multi-process tests (any engine)."""

from __future__ import annotations

import gc
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from vrl.engines.memory import StorageCounter


class LiveBytes(TorchDispatchMode):
    """Bytes of the storages allocated by operators while the mode is active and still alive, and their peak.

    tracemalloc does not see torch allocations and the CPU allocator keeps no statistics: every operator
    output with a new storage is counted until the first tensor holding that storage is collected (a view
    keeps its base alive, so the storage is released then)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._keys: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(r.alias_info is not None for r in func._schema.returns):
            return out  # a view or an in-place result: no new storage (detach of a parameter, split, copy_)
        for t in tree_leaves(out):
            # meta tensors hold no memory; a wrapper subclass (a functional collective's result) has no
            # storage of its own: the tensor it wraps was allocated by an operator seen here
            if type(t) is torch.Tensor and t.device.type != "meta":
                self._track(t)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or key in self._keys:
            return
        self._keys.add(key)
        self.live += size
        self.peak = max(self.peak, self.live)
        weakref.finalize(tensor, self._release, key, size)

    def _release(self, key: int, size: int) -> None:
        self._keys.discard(key)
        self.live -= size


def check_buckets(engine, bucket_bytes: int) -> dict:
    """Buckets of ``engine`` vs its ``rollout_weights()``: same names, order and values; each bucket at most
    ``bucket_bytes`` of distinct storage unless it holds one converted tensor (group); the engine keeps
    nothing of a bucket once the caller drops it. Returns measured numbers (bytes)."""
    reference = [(n, t.clone()) for n, t in engine.rollout_weights()]
    largest_tensor = max(StorageCounter().add([t]) for _, t in reference)
    names: list[str] = []
    sizes: list[int] = []
    with LiveBytes() as live:
        for bucket in engine.rollout_weight_buckets(bucket_bytes):
            size = StorageCounter().add(t for _, t in bucket)
            if size > bucket_bytes:
                assert _one_unit(bucket), f"bucket of {size} bytes > {bucket_bytes}: {[n for n, _ in bucket]}"
            for (name, tensor), (ref_name, ref) in zip(bucket, reference[len(names) :]):
                assert name == ref_name, (name, ref_name)
                assert torch.equal(tensor, ref), name
            names.extend(n for n, _ in bucket)
            sizes.append(size)
            del bucket, tensor
        gc.collect()  # reference cycles (collectable garbage, not references the engine keeps)
    assert names == [n for n, _ in reference]
    return {
        "num_buckets": len(sizes),
        "largest_bucket": max(sizes),
        "largest_tensor": largest_tensor,
        "peak_extra": live.peak,
        "left_alive": live.live,
    }


def _one_unit(bucket) -> bool:
    """One HF tensor, or the HF tensors made from one Megatron tensor (q/k/v of a fused QKV, gate/up of
    fc1: the same module prefix), or the embedding with its tied ``lm_head`` alias."""
    names = [n for n, _ in bucket if n != "lm_head.weight"] or [n for n, _ in bucket]
    return len({n.rsplit(".", 2)[0] for n in names}) == 1
