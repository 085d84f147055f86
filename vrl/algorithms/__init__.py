"""RL algorithm math as pure functions on tensors: advantages, policy loss, KL, entropy, sampling.

No model, no distribution: everything here is testable on hand-made tensors. Names used in configs
resolve through explicit registries (``get_advantage``, ``aggregate_loss`` modes, ``kl_estimate`` kinds).
"""

from vrl.algorithms.advantages import advantage_names, compute_advantages, get_advantage, register_advantage
from vrl.algorithms.aggregation import aggregate_loss, loss_agg_modes
from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.entropy import entropy_from_logits, entropy_from_logprobs
from vrl.algorithms.kl import kl_estimate, kl_kinds, kl_loss, kl_penalty
from vrl.algorithms.objective import actor_loss, shape_rewards
from vrl.algorithms.policy_loss import policy_loss
from vrl.algorithms.sampling import GroupAccumulator, filter_groups, overlong_penalty

__all__ = [
    "AlgorithmConfig",
    "GroupAccumulator",
    "actor_loss",
    "advantage_names",
    "aggregate_loss",
    "compute_advantages",
    "entropy_from_logits",
    "entropy_from_logprobs",
    "filter_groups",
    "get_advantage",
    "kl_estimate",
    "kl_kinds",
    "kl_loss",
    "kl_penalty",
    "loss_agg_modes",
    "overlong_penalty",
    "policy_loss",
    "register_advantage",
    "shape_rewards",
]
