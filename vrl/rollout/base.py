"""The rollout-engine interface: sample responses for processed prompts; receive new policy weights."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from vrl.batch import Prompt


@dataclass
class Completion:
    token_ids: list[int]
    """Response tokens, the stop token included when the model stopped."""
    text: str
    """Decoded response without special tokens."""
    truncated: bool
    """Stopped by the length limit."""
    logprobs: list[float] | None = None
    """Log-probs of ``token_ids`` as the engine computed them while sampling (:func:`logprob_mode` says which
    distribution): the behaviour policy of rollout correction."""


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 64

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def logprob_mode(temperature: float, top_p: float, top_k: int) -> str:
    """Which log-probs the rollout engines report for the tokens they sample, chosen to match the trainer's
    (``log_softmax(logits / temperature)``, nothing truncated, no token banned):

    - ``raw`` at temperature 1 (or greedy) without top-k/top-p: the model's own log-softmax, before the
      sampler's processing. Identical to the trainer's definition; the vision-token ban (a sampling-only
      guard, see :func:`vision_token_ids`) stays out of it.
    - ``processed`` otherwise: the distribution actually sampled from, after temperature, the ban and top-k/
      top-p (vLLM has no mode with temperature alone). Temperature then matches the trainer; truncation and
      the ban show up as a real rollout/trainer mismatch, which rollout correction accounts for.
    """
    if temperature in (0.0, 1.0) and top_p >= 1.0 and top_k <= 0:
        return "raw"
    return "processed"


VISION_TOKEN_KEYS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


def vision_token_ids(config: object) -> list[int]:
    """Placeholder tokens a response must never contain: the model would expect vision features there."""
    ids = []
    for key in VISION_TOKEN_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int):
            ids.append(value)
    return sorted(set(ids))


class RolloutEngine(ABC):
    name: str = "base"

    @abstractmethod
    def generate(self, prompts: list[Prompt], params: SamplingParams, seed: int) -> list[list[Completion]]:
        """``params.n`` completions per prompt. Same seed, prompts and weights → same completions."""

    @abstractmethod
    def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new policy weights (HF parameter names, full tensors), consuming ``weights`` once and in
        order without keeping what it has loaded: a stream of buckets (:mod:`vrl.rollout.sync`)."""

    def sleep(self) -> None:  # noqa: B027 - optional hook
        """Release memory while the trainer updates (GPU engines)."""

    def wake(self) -> None:  # noqa: B027 - optional hook
        """Re-acquire memory before generating again."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Shut the engine down."""
