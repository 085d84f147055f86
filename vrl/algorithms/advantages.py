"""Advantage estimators, selected by name: outcome estimators (one advantage per response) and token-level
estimators (one per response token).

**Outcome estimators** (``grpo``, ``drgrpo``, ``rloo``, ``gdpo``, ``grpo_passk``) have the signature
``fn(rewards, group_ids, eps) -> advantages (B,)``:

- ``rewards``: float tensor (B,) — one scalar reward per response — or a dict of reward components
  ``{key: (B,)}``. Estimators other than ``gdpo`` sum the components first, so pass the components you
  want combined (not an ``overall`` that already sums them).
- ``group_ids``: integer tensor (B,); responses to the same prompt share an id. Ids need not be
  contiguous and groups may differ in size (after dynamic-sampling filters or offline mixing).
- ``eps``: added to the standard deviation (``x / (std + eps)``), so a near-constant group cannot blow up.

The per-sample advantage is later broadcast over the response tokens by the policy loss.

**Token-level estimators** (``reinforce_plus_plus``, ``reinforce_plus_plus_baseline``, ``remax``) have the
signature ``fn(inputs: AdvantageInputs) -> advantages (B, T)``, 0 on padding: they need the response
mask, may take a per-token reward (``kl_as=reward``: ``-kl_coef * KL`` per token, kept per token instead of
summed into the outcome), a discount ``gamma`` and, for ReMax, the reward of a greedy response per prompt.
The outcome reward is placed on the last valid token (``R_t = token_rewards_t + r * [t = last]``) and
returns are ``G_t = sum_{k >= t} gamma^(k - t) R_k``. :func:`is_token_level` tells the two kinds apart;
:func:`compute_advantages` calls either.

Conventions (golden tests pin them):

- Standard deviations are **unbiased** (Bessel, ``n - 1``), as ``torch.std`` and the GRPO references
  (DeepSeekMath, verl, TRL) use, so numbers compare across implementations; whitening divides by
  ``std + eps`` (verl's ``masked_whiten`` uses ``rsqrt(var + 1e-8)``: the same up to ~1e-8).
- Group-relative estimators (``grpo``, ``drgrpo``, ``rloo``, ``grpo_passk``): a group of size 1, or whose
  rewards are all equal, gives advantage exactly 0: it carries no relative signal, and exact zeros keep
  such samples from adding noise to the gradient.
- Batch-whitened estimators (``gdpo``, ``reinforce_plus_plus_baseline``) re-centre over the batch, so a
  constant group gets the batch shift, but singleton-group samples stay exactly 0 and are left out of the
  batch statistics (verl would use a singleton's raw reward).
- ``reinforce_plus_plus`` and ``remax`` have no group baseline (a batch whitening, a greedy response).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from vrl.algorithms.groups import Groups
from vrl.algorithms.registry import Registry

Rewards = Tensor | Mapping[str, Tensor]
AdvantageFn = Callable[[Rewards, Tensor, float], Tensor]


@dataclass(frozen=True)
class AdvantageInputs:
    """What a token-level estimator reads. ``B`` responses, ``T`` the longest response.

    ``rewards`` (B,) outcome reward (or a dict of components, summed); ``group_ids`` (B,); ``mask`` (B, T)
    valid response tokens; ``token_rewards`` (B, T) per-token reward added to the outcome (0 on padding;
    None = none); ``baselines`` (B,) the reward of the greedy response to each sample's prompt (ReMax);
    ``gamma`` the discount of returns; ``eps`` added to standard deviations."""

    rewards: Rewards
    group_ids: Tensor
    mask: Tensor
    token_rewards: Tensor | None = None
    baselines: Tensor | None = None
    gamma: float = 1.0
    eps: float = 1e-6


TokenAdvantageFn = Callable[[AdvantageInputs], Tensor]

_ADVANTAGES: Registry[AdvantageFn | TokenAdvantageFn] = Registry("advantage estimator")
_TOKEN_LEVEL: set[str] = set()


def register_advantage(
    name: str, *, token_level: bool = False
) -> Callable[[AdvantageFn | TokenAdvantageFn], AdvantageFn | TokenAdvantageFn]:
    """Decorator registering an estimator under ``name``: ``fn(rewards, group_ids, eps) -> (B,)``, or with
    ``token_level=True`` ``fn(inputs: AdvantageInputs) -> (B, T)``."""
    register = _ADVANTAGES.register(name)

    def deco(fn):
        register(fn)
        if token_level:
            _TOKEN_LEVEL.add(name)
        return fn

    return deco


def get_advantage(name: str) -> AdvantageFn | TokenAdvantageFn:
    """The estimator registered as ``name``; unknown names raise ``ValueError`` listing the known ones."""
    return _ADVANTAGES.get(name)


def advantage_names() -> list[str]:
    return _ADVANTAGES.names()


def is_token_level(name: str) -> bool:
    """Whether estimator ``name`` returns (B, T) advantages from :class:`AdvantageInputs`."""
    _ADVANTAGES.get(name)
    return name in _TOKEN_LEVEL


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


@register_advantage("grpo_passk")
def grpo_passk(rewards: Rewards, group_ids: Tensor, eps: float = 1e-6) -> Tensor:
    """GRPO pass@k: only the best response of a group learns, ``(r_max - r_second) / (std_g + eps)``. (B,).

    The gradient of the expected *maximum* reward of ``k = n`` samples, with a leave-one-out baseline
    (Tang et al. 2025; verl's ``grpo_passk``): the best response is credited with its margin over the
    runner-up, every other response gets 0. Ties for the maximum give the margin 0; the first (lowest
    batch index) of equal maxima is the one credited. Singleton groups give 0 (verl raises).
    """
    groups = Groups.from_ids(group_ids)
    r = _total(rewards, groups)
    adv = torch.zeros_like(r)
    std = groups.std(r, unbiased=True)
    for g in range(groups.num_groups):
        members = (groups.index == g).nonzero().flatten()
        if members.numel() < 2:
            continue
        values = r[members]
        best = int(torch.argmax(values))  # first index of the maximum
        runner_up = torch.cat([values[:best], values[best + 1 :]]).max()
        adv[members[best]] = (values[best] - runner_up) / (std[g] + eps)
    return adv


def _check_token_inputs(inputs: AdvantageInputs) -> tuple[Groups, Tensor, Tensor]:
    """Groups, outcome rewards (B,) and the bool mask (B, T), shape-checked."""
    groups = Groups.from_ids(inputs.group_ids)
    r = _total(inputs.rewards, groups)
    mask = torch.as_tensor(inputs.mask).bool()
    if mask.dim() != 2 or mask.shape[0] != r.shape[0]:
        raise ValueError(f"mask must be (B, T) with B = {r.shape[0]}, got {tuple(mask.shape)}")
    if inputs.token_rewards is not None and inputs.token_rewards.shape != mask.shape:
        raise ValueError(
            f"token_rewards must be (B, T) = {tuple(mask.shape)}, got {tuple(inputs.token_rewards.shape)}"
        )
    if not 0.0 <= inputs.gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {inputs.gamma}")
    return groups, r, mask


def token_level_rewards(rewards: Tensor, mask: Tensor, token_rewards: Tensor | None = None) -> Tensor:
    """(B, T): the outcome ``rewards`` (B,) on each row's last valid token plus ``token_rewards`` (B, T)."""
    out = torch.zeros(mask.shape, dtype=rewards.dtype, device=rewards.device)
    if token_rewards is not None:
        out = out + torch.where(mask, token_rewards.to(out.dtype), torch.zeros_like(out))
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, positions, torch.full_like(positions, -1)).max(-1).values  # -1: empty row
    rows = (last >= 0).nonzero().flatten()
    out[rows, last[rows]] += rewards[rows]
    return out


def discounted_returns(token_rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """``G_t = R_t + gamma * G_{t+1}`` over the valid tokens of each row, 0 on padding; (B, T) → (B, T).

    A masked position resets the running return, so nothing leaks across padding."""
    returns = torch.zeros_like(token_rewards)
    running = torch.zeros_like(token_rewards[:, 0])
    for t in range(token_rewards.shape[1] - 1, -1, -1):
        running = torch.where(mask[:, t], token_rewards[:, t] + gamma * running, torch.zeros_like(running))
        returns[:, t] = running
    return returns


def masked_whiten(values: Tensor, mask: Tensor, eps: float) -> Tensor:
    """``(x - mean) / (std + eps)`` with the mean and unbiased std over the ``mask`` (B, T) entries, 0
    elsewhere; all 0 when fewer than two entries are selected (no spread to estimate)."""
    if int(mask.sum()) < 2:
        return torch.zeros_like(values)
    pool = values[mask]
    out = (values - pool.mean()) / (pool.std(unbiased=True) + eps)
    return torch.where(mask, out, torch.zeros_like(out))


@register_advantage("reinforce_plus_plus", token_level=True)
def reinforce_plus_plus(inputs: AdvantageInputs) -> Tensor:
    """REINFORCE++ (Hu 2025): discounted returns of the token rewards, whitened over every valid token of
    the batch, ``A_t = (G_t - mean) / (std + eps)``. (B, T).

    No critic and no group baseline: the batch whitening is the baseline, so prompts need not be sampled
    in groups. With ``gamma = 1`` and no per-token reward every token of a response gets the same value.
    """
    _, r, mask = _check_token_inputs(inputs)
    returns = discounted_returns(token_level_rewards(r, mask, inputs.token_rewards), mask, inputs.gamma)
    return masked_whiten(returns, mask, inputs.eps)


@register_advantage("reinforce_plus_plus_baseline", token_level=True)
def reinforce_plus_plus_baseline(inputs: AdvantageInputs) -> Tensor:
    """REINFORCE++-baseline: the group mean as baseline, then whitening over the batch's tokens. (B, T).

    ``c_i = (r_i + sum_t token_rewards_it) - mean_g`` (exactly 0 for singleton and constant groups) is
    broadcast over the response, then ``(c - mean) / (std + eps)`` with the mean and unbiased std over the
    valid tokens of samples in groups of size >= 2 (token-weighted, as verl; singletons stay 0).
    ``gamma`` is not used (the return of an outcome reward is the reward).
    """
    groups, r, mask = _check_token_inputs(inputs)
    if inputs.token_rewards is not None:
        r = r + torch.where(mask, inputs.token_rewards.to(r.dtype), torch.zeros_like(r[:, None])).sum(-1)
    centred = _zero_uninformative(r - groups.broadcast(groups.mean(r)), groups, r)
    live = groups.broadcast(groups.sizes >= 2)[:, None] & mask
    return masked_whiten(centred[:, None].expand(mask.shape).to(r.dtype), live, inputs.eps)


@register_advantage("remax", token_level=True)
def remax(inputs: AdvantageInputs) -> Tensor:
    """ReMax (Li et al. 2023): ``A_t = G_t - b``, returns of the token rewards minus the reward ``b`` of
    the greedy response to the same prompt. (B, T).

    The greedy response is a baseline that needs no value model and no group: one extra generation per
    prompt. No discount (``G_t`` sums the remaining token rewards; with outcome rewards only, ``A = r - b``
    on every token) and no normalisation, as in the paper and verl.
    """
    _, r, mask = _check_token_inputs(inputs)
    if inputs.baselines is None:
        raise ValueError(
            "remax needs the reward of a greedy response per prompt (baselines); the trainer generates "
            "them when algorithm.advantage=remax"
        )
    b = torch.as_tensor(inputs.baselines, dtype=r.dtype, device=r.device)
    if b.shape != r.shape or not torch.isfinite(b).all():
        raise ValueError(f"baselines must be finite with shape {tuple(r.shape)}, got {tuple(b.shape)}")
    returns = discounted_returns(token_level_rewards(r, mask, inputs.token_rewards), mask, 1.0)
    return torch.where(mask, returns - b[:, None], torch.zeros_like(returns))


def compute_advantages(
    name: str,
    rewards: Rewards,
    group_ids: Tensor,
    eps: float = 1e-6,
    *,
    mask: Tensor | None = None,
    token_rewards: Tensor | None = None,
    baselines: Tensor | None = None,
    gamma: float = 1.0,
) -> Tensor:
    """Look up estimator ``name`` and apply it; advantages are constants for the loss (no gradient).

    Outcome estimators return (B,) and take no per-token inputs (sum a per-token reward into ``rewards``
    first); token-level estimators (:func:`is_token_level`) return (B, T) and need ``mask`` (B, T).
    """
    fn = get_advantage(name)
    with torch.no_grad():
        if is_token_level(name):
            if mask is None:
                raise ValueError(f"advantage estimator '{name}' is token-level: it needs the response mask")
            inputs = AdvantageInputs(rewards, group_ids, mask, token_rewards, baselines, gamma, eps)
            return fn(inputs)  # type: ignore[call-arg,arg-type]
        if token_rewards is not None or baselines is not None:
            raise ValueError(
                f"advantage estimator '{name}' takes one reward per response: sum per-token rewards into "
                "rewards first; baselines are for remax"
            )
        return fn(rewards, group_ids, eps)  # type: ignore[call-arg,arg-type]
