"""RL algorithm math as pure functions on tensors: advantages, policy losses, KL and its controller,
entropy, sampling, rollout correction.

No model, no distribution: everything here is testable on hand-made tensors. Names used in configs
resolve through explicit registries (``get_advantage``, ``policy_loss_modes``, ``aggregate_loss`` modes,
``kl_estimate`` kinds, ``build_kl_controller``, ``rollout_correction_weights`` modes).
"""

from vrl.algorithms.advantages import (
    AdvantageInputs,
    advantage_names,
    compute_advantages,
    get_advantage,
    is_token_level,
    register_advantage,
)
from vrl.algorithms.aggregation import aggregate_loss, loss_agg_modes
from vrl.algorithms.config import AlgorithmConfig
from vrl.algorithms.entropy import entropy_from_logits, entropy_from_logprobs
from vrl.algorithms.kl import kl_estimate, kl_kinds, kl_loss, kl_penalty
from vrl.algorithms.kl_control import AdaptiveKLController, FixedKLController, build_kl_controller
from vrl.algorithms.objective import actor_loss, shape_rewards, token_kl_rewards
from vrl.algorithms.policy_loss import policy_loss, policy_loss_modes
from vrl.algorithms.rollout_correction import (
    rollout_correction_metrics,
    rollout_correction_modes,
    rollout_correction_weights,
)
from vrl.algorithms.sampling import GroupAccumulator, filter_groups, overlong_penalty

__all__ = [
    "AdaptiveKLController",
    "AdvantageInputs",
    "AlgorithmConfig",
    "FixedKLController",
    "GroupAccumulator",
    "actor_loss",
    "advantage_names",
    "aggregate_loss",
    "build_kl_controller",
    "compute_advantages",
    "entropy_from_logits",
    "entropy_from_logprobs",
    "filter_groups",
    "get_advantage",
    "is_token_level",
    "kl_estimate",
    "kl_kinds",
    "kl_loss",
    "kl_penalty",
    "loss_agg_modes",
    "overlong_penalty",
    "policy_loss",
    "policy_loss_modes",
    "register_advantage",
    "rollout_correction_metrics",
    "rollout_correction_modes",
    "rollout_correction_weights",
    "shape_rewards",
    "token_kl_rewards",
]
