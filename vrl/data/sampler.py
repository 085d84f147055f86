"""A deterministic, resumable prompt sampler: seeded per-epoch shuffles, a position to checkpoint.

The whole run sees one global order (the same for any number of ranks); each step takes the next
``batch_size`` records of it and rank r keeps slice r of that batch. State is two integers, so resuming
after preemption continues with exactly the records an uninterrupted run would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SamplerState:
    epoch: int = 0
    position: int = 0


class PromptSampler:
    def __init__(self, num_records: int, batch_size: int, seed: int, shuffle: bool = True) -> None:
        if num_records < 1:
            raise ValueError("the training set is empty")
        self.num_records = num_records
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.state = SamplerState()

    def _order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_records)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_records)

    def next_batch(self) -> list[int]:
        """Indices of the next ``batch_size`` records (crossing epoch boundaries as needed)."""
        out: list[int] = []
        while len(out) < self.batch_size:
            order = self._order(self.state.epoch)
            take = order[self.state.position : self.state.position + self.batch_size - len(out)]
            out.extend(int(i) for i in take)
            self.state.position += len(take)
            if self.state.position >= self.num_records:
                self.state.epoch += 1
                self.state.position = 0
        return out

    @staticmethod
    def shard(indices: list[int], rank: int, world_size: int) -> list[int]:
        """Rank ``rank``'s contiguous slice (the batch size is a multiple of the world size)."""
        per = len(indices) // world_size
        return indices[rank * per : (rank + 1) * per]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.state.epoch, "position": self.state.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.state = SamplerState(epoch=int(state["epoch"]), position=int(state["position"]))
