"""KL coefficient controllers: a fixed ``kl_coef`` or one adapted towards a target KL (Ziegler et al. 2019).

``adaptive`` (verl's ``AdaptiveKLController``, the PPO-for-language-models rule): after a step that
measured KL ``k`` over ``n`` samples,

    e = clip(k / kl_target - 1, -0.2, 0.2)
    kl_coef <- kl_coef * (1 + e * n / kl_horizon)

so the coefficient grows while the policy drifts further than the target and shrinks while it stays
closer, by at most 20 % per ``kl_horizon`` samples. ``fixed`` never changes the coefficient.

A controller's coefficient is training state: ``state_dict()`` / ``load_state_dict()`` let the trainer
checkpoint it, so a resumed run continues with the coefficient the killed run had reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from vrl.algorithms.registry import Registry

#: the proportional error is clipped to ±PROPORTIONAL_CLIP before it scales the coefficient
PROPORTIONAL_CLIP = 0.2


class KLController(Protocol):
    value: float

    def update(self, current_kl: float, n_steps: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class FixedKLController:
    """``value`` stays ``kl_coef``; ``update`` is a no-op."""

    def __init__(self, kl_coef: float) -> None:
        if kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Nothing to adapt (accepts the adaptive controller's arguments)."""

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Multiplicative coefficient update towards ``target_kl`` over ``horizon`` samples (module docstring)."""

    def __init__(self, init_kl_coef: float, target_kl: float, horizon: float) -> None:
        if init_kl_coef <= 0:
            raise ValueError(f"adaptive KL control scales kl_coef, so it must start > 0, got {init_kl_coef}")
        if target_kl <= 0 or horizon <= 0:
            raise ValueError(f"kl_target and kl_horizon must be > 0, got {target_kl}, {horizon}")
        self.value = float(init_kl_coef)
        self.target = float(target_kl)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Adapt ``value`` after a step that measured ``current_kl`` over ``n_steps`` samples."""
        if not math.isfinite(current_kl):
            raise ValueError(f"the measured KL is not finite ({current_kl}): cannot adapt the KL coefficient")
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        error = min(max(current_kl / self.target - 1.0, -PROPORTIONAL_CLIP), PROPORTIONAL_CLIP)
        mult = 1.0 + error * n_steps / self.horizon
        if mult <= 0:
            raise ValueError(
                f"kl_horizon={self.horizon:g} is too small for {n_steps} samples per step: the coefficient "
                f"would be multiplied by {mult:.3g}; use kl_horizon > {PROPORTIONAL_CLIP * n_steps:g}"
            )
        self.value *= mult

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])


ControllerFactory = Callable[[float, float, float], KLController]

_CONTROLLERS: Registry[ControllerFactory] = Registry("KL controller")


@_CONTROLLERS.register("fixed")
def _fixed(kl_coef: float, target: float, horizon: float) -> KLController:
    return FixedKLController(kl_coef)


@_CONTROLLERS.register("adaptive")
def _adaptive(kl_coef: float, target: float, horizon: float) -> KLController:
    return AdaptiveKLController(kl_coef, target, horizon)


def kl_controller_names() -> list[str]:
    return _CONTROLLERS.names()


def build_kl_controller(kind: str, kl_coef: float, kl_target: float, kl_horizon: float) -> KLController:
    """The controller ``kind`` (``fixed`` or ``adaptive``) starting at ``kl_coef``."""
    return _CONTROLLERS.get(kind)(kl_coef, kl_target, kl_horizon)
