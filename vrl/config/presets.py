"""Named presets: Python functions returning a config instance, registered per stage.

A preset is derived by copy-and-mutate from the schema defaults (or another preset), so it is typed and
validated like any config. Selected on the command line with ``preset=<name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_PRESETS: dict[tuple[str, str], Callable[[], Any]] = {}


def register_preset(stage: str, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Decorator: register ``fn() -> config`` as preset ``name`` of ``stage``."""

    def deco(fn: Callable[[], Any]) -> Callable[[], Any]:
        if (stage, name) in _PRESETS:
            raise ValueError(f"preset '{name}' of stage '{stage}' is already registered")
        _PRESETS[(stage, name)] = fn
        return fn

    return deco


def preset_names(stage: str) -> list[str]:
    return sorted(n for s, n in _PRESETS if s == stage)


def get_preset(stage: str, name: str) -> Any:
    """Build preset ``name`` for ``stage``; unknown names raise listing the known ones."""
    from vrl.config.core import ConfigError

    if (stage, name) not in _PRESETS:
        known = ", ".join(preset_names(stage)) or "(none)"
        raise ConfigError(f"Unknown preset '{name}' for stage '{stage}'. Known presets: {known}.")
    return _PRESETS[(stage, name)]()
