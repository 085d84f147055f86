"""The training-engine interface: what the trainer needs from FSDP, Megatron or any other backend.

An engine owns the policy (and, with a KL term, a frozen reference), its optimizer and scheduler. It
computes per-token log-probs of trajectories, runs one optimizer step over a mini-batch with a loss
function the trainer gives it, streams HF-named weights to the rollout engine, and saves/loads/exports.
It knows nothing about advantages or rewards: the algorithm lives in the loss function.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from vrl.batch import MicroBatch, Trajectory

#: (logp (B, R), entropy (B, R) or None, micro-batch) -> (loss scalar, metrics). The loss must already be
#: normalised for the whole mini-batch on all ranks: engines only sum micro-batch losses and backprop.
LossFn = Callable[[torch.Tensor, torch.Tensor | None, MicroBatch], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class LogProbs:
    """Per trajectory, (R_i,) tensors."""

    logp: list[torch.Tensor]
    entropy: list[torch.Tensor] | None = None


class TrainingEngine(ABC):
    name: str = "base"

    @abstractmethod
    def compute_logprobs(
        self, trajs: list[Trajectory], *, reference: bool = False, with_entropy: bool = False
    ) -> LogProbs:
        """Log-probs of each trajectory's response tokens under the policy (or the reference), no grad.

        Collective: every rank calls it (with possibly different numbers of trajectories)."""

    @abstractmethod
    def train_step(self, trajs: list[Trajectory], loss_fn: LossFn, *, need_entropy: bool) -> dict[str, float]:
        """One optimizer step on this rank's share of the mini-batch (micro-batched), then LR schedule."""

    @abstractmethod
    def rollout_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Full, HF-named policy tensors (collective: every rank iterates in the same order)."""

    @abstractmethod
    def rollout_weight_buckets(self, bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
        """The tensors of :meth:`rollout_weights` (same names, values and order), grouped in buckets of at most
        ``bucket_bytes`` (a single larger tensor is a bucket of its own).

        Gathered lazily, one bucket at a time, so a caller that loads each bucket into the rollout engine and
        drops it holds about one bucket of full tensors, never a second copy of the model. Collective: every
        rank iterates the same buckets in the same order."""

    @abstractmethod
    def memory_breakdown(self) -> dict[str, int]:
        """Bytes this rank holds in allocated tensors, by component (keys exactly
        :data:`vrl.engines.memory.COMPONENTS`), counted from the tensors (distinct storages: local shards,
        buffer padding included, views not twice), so a memory planner can be checked against it.

        ``params``: policy (and reference) weights. ``grads``: the gradients an update holds: persistent
        gradient buffers where the engine keeps them, else one gradient per trainable parameter (allocated
        in backward, freed after the step). ``optimizer``: optimizer state (AdamW creates it at the first
        step: 0 before). ``main_weights``: fp32 master weights kept apart from the parameters (0 when the
        parameters are the masters)."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Model + optimizer + scheduler state into ``path`` (collective)."""

    @abstractmethod
    def load(self, path: Path) -> None:
        """Restore what :meth:`save` wrote (collective)."""

    @abstractmethod
    def export_hf(self, path: Path) -> None:
        """A Hugging Face checkpoint of the policy (+ processor files) in ``path`` (rank 0 writes)."""

    @property
    @abstractmethod
    def lr(self) -> float:
        """Current learning rate."""
