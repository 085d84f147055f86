"""A named-function registry: one small class shared by every algorithm family.

Trainers select estimators, losses and KL kinds by name from the config, so a typo must fail at start-up
with the list of valid names rather than deep inside a training step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """``name -> function`` with loud failures: duplicates and unknown names raise ``ValueError``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator adding ``fn`` under ``name``; registering a name twice is a bug and raises."""

        def deco(fn: F) -> F:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = fn
            return fn

        return deco

    def get(self, name: str) -> F:
        if name not in self._items:
            raise ValueError(f"Unknown {self.kind} '{name}'. Known: {', '.join(self.names())}.")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
