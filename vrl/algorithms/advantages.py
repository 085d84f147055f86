"""Outcome advantage estimators for group-sampled rollouts (GRPO family), selected by name.

Every estimator has the signature ``fn(rewards, group_ids, eps) -> advantages (B,)``:

- ``rewards``: float tensor (B,) — one scalar reward per response — or a dict of reward components
  ``{key: (B,)}``. Estimators other than ``gdpo`` sum the components first, so pass the components you
  want combined (not an ``overall`` that already sums them).
- ``group_ids``: integer tensor (B,); responses to the same prompt share an id. Ids need not be
  contiguous and groups may differ in size (after dynamic-sampling filters or offline mixing).
- ``eps``: added to the standard deviation (``x / (std + eps)``), so a near-constant group cannot blow up.

Conventions shared by all estimators (golden tests pin them):

- The standard deviation is the **unbiased** (Bessel, ``n - 1``) estimator, as ``torch.std`` and the
  GRPO references (DeepSeekMath, verl, TRL) use, so numbers compare across implementations.
- A group of size 1, or whose rewards are all equal, gives advantage exactly 0: it carries no relative
  signal, and exact zeros keep such samples from adding noise to the gradient.

The per-sample advantage is later broadcast over the response tokens by the policy loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from vrl.algorithms.groups import Groups
from vrl.algorithms.registry import Registry

Rewards = Tensor | Mapping[str, Tensor]
AdvantageFn = Callable[[Rewards, Tensor, float], Tensor]

_ADVANTAGES: Registry[AdvantageFn] = Registry("advantage estimator")


def register_advantage(name: str) -> Callable[[AdvantageFn], AdvantageFn]:
    """Decorator registering an estimator ``fn(rewards, group_ids, eps) -> (B,)`` under ``name``."""
    return _ADVANTAGES.register(name)


def get_advantage(name: str) -> AdvantageFn:
    """The estimator registered as ``name``; unknown names raise ``ValueError`` listing the known ones."""
    return _ADVANTAGES.get(name)


def advantage_names() -> list[str]:
    return _ADVANTAGES.names()


def _as_float(values: Tensor, groups: Groups, what: str) -> Tensor:
    values = torch.as_tensor(values, device=groups.index.device)
    groups.check(values, what)
    values = values if values.dtype.is_floating_point else values.to(torch.float32)
    if not torch.isfinite(values).all():
        raise ValueError(f"{what} contain NaN or inf: a reward function returned a non-finite score")
    return values


def _total(rewards: Rewards, groups: Groups) -> Tensor:
    """A dict of components → their sum (B,); a tensor → itself, checked."""
    if isinstance(rewards, Mapping):
        if not rewards:
            raise ValueError("rewards dict is empty")
        parts = [_as_float(v, groups, f"rewards[{k!r}]") for k, v in rewards.items()]
        return torch.stack(parts).sum(0)
    return _as_float(rewards, groups, "rewards")


def _zero_uninformative(adv: Tensor, groups: Groups, rewards: Tensor) -> Tensor:
    """Exact 0 for singleton and constant groups (see module docstring)."""
    dead = groups.is_constant(rewards) | (groups.sizes < 2)
    return torch.where(groups.broadcast(dead), torch.zeros_like(adv), adv)


def group_normalize(rewards: Tensor, groups: Groups, eps: float) -> Tensor:
    """(r - group mean) / (unbiased group std + eps), 0 for singleton/constant groups. (B,) → (B,)."""
    mean = groups.broadcast(groups.mean(rewards))
    std = groups.broadcast(groups.std(rewards, unbiased=True))
    return _zero_uninformative((rewards - mean) / (std + eps), groups, rewards)


@register_advantage("grpo")
def grpo(rewards: Rewards, group_ids: Tensor, eps: float = 1e-6) -> Tensor:
    """GRPO: reward whitened within its group, ``(r - mean_g) / (std_g + eps)``. Returns (B,)."""
    groups = Groups.from_ids(group_ids)
    return group_normalize(_total(rewards, groups), groups, eps)


@register_advantage("drgrpo")
def drgrpo(rewards: Rewards, group_ids: Tensor, eps: float = 1e-6) -> Tensor:
    """Dr.GRPO: ``r - mean_g`` only; dividing by the std over-weights easy/hard prompts. Returns (B,).

    ``eps`` is unused (no division) and accepted for the common signature.
    """
    groups = Groups.from_ids(group_ids)
    r = _total(rewards, groups)
    return _zero_uninformative(r - groups.broadcast(groups.mean(r)), groups, r)


@register_advantage("rloo")
def rloo(rewards: Rewards, group_ids: Tensor, eps: float = 1e-6) -> Tensor:
    """RLOO: ``r_i`` minus the mean of the *other* members of its group. Returns (B,).

    Equals ``n / (n - 1) * (r_i - mean_g)`` for a group of size ``n``; the leave-one-out baseline is
    independent of ``r_i``, so the estimate is unbiased. ``eps`` is unused.
    """
    groups = Groups.from_ids(group_ids)
    r = _total(rewards, groups)
    n = groups.broadcast(groups.sizes).to(r.dtype)
    adv = (r - groups.broadcast(groups.mean(r))) * n / (n - 1).clamp(min=1.0)
    return _zero_uninformative(adv, groups, r)


@register_advantage("gdpo")
def gdpo(rewards: Rewards, group_ids: Tensor, eps: float = 1e-6) -> Tensor:
    """GDPO: normalise each reward component within its group, sum, then whiten over the batch. (B,).

    Normalising components separately keeps distinct reward combinations distinct (summing first, as
    GRPO does, can collapse them onto the same advantage); the batch whitening keeps the scale from
    growing with the number of components. The batch mean and unbiased std are taken over the samples in
    groups of size >= 2; singleton-group samples stay at exactly 0. A plain tensor is one component.
    """
    groups = Groups.from_ids(group_ids)
    parts = dict(rewards) if isinstance(rewards, Mapping) else {"reward": rewards}
    if not parts:
        raise ValueError("rewards dict is empty")
    summed = sum(
        group_normalize(_as_float(v, groups, f"rewards[{k!r}]"), groups, eps) for k, v in parts.items()
    )
    assert isinstance(summed, Tensor)
    live = groups.broadcast(groups.sizes >= 2)
    if int(live.sum()) < 2:
        return torch.zeros_like(summed)
    pool = summed[live]
    whitened = (summed - pool.mean()) / (pool.std(unbiased=True) + eps)
    return torch.where(live, whitened, torch.zeros_like(whitened))


def compute_advantages(name: str, rewards: Rewards, group_ids: Tensor, eps: float = 1e-6) -> Tensor:
    """Look up estimator ``name`` and apply it; advantages are constants for the loss (no gradient)."""
    with torch.no_grad():
        return get_advantage(name)(rewards, group_ids, eps)
