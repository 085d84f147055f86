"""Grouping a stream of tensors into buckets of at most ``bucket_bytes``, from their sizes alone.

Engines plan buckets before gathering anything (sizes come from global shapes), then gather one bucket at a
time, so the rollout's in-memory weight sync holds about one bucket of full tensors, never a second copy
of the model.
"""

from __future__ import annotations


def plan_buckets(sizes: list[int], bucket_bytes: int) -> list[list[int]]:
    """Consecutive index groups of ``sizes`` (bytes), each summing to at most ``bucket_bytes``, except a
    single item larger than ``bucket_bytes``, which is a bucket of its own. Order is preserved."""
    if bucket_bytes < 1:
        raise ValueError(f"bucket_bytes must be >= 1, got {bucket_bytes}")
    buckets: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if current and used + size > bucket_bytes:
            buckets.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        buckets.append(current)
    return buckets
