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
    """Sampling log-probs of ``token_ids`` as the engine computed them (for diagnostics)."""


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
        """Load new policy weights (HF parameter names, full tensors)."""

    def sleep(self) -> None:  # noqa: B027 - optional hook
        """Release memory while the trainer updates (GPU engines)."""

    def wake(self) -> None:  # noqa: B027 - optional hook
        """Re-acquire memory before generating again."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Shut the engine down."""
