"""``AlgorithmConfig``: every knob of the RL objective, one typed group (``algorithm.*`` in the trainer).

Defaults are GRPO as the video-RL references run it: group-whitened advantages, token-mean loss, PPO clip
0.2 with DAPO's clip-higher 0.28 on the upper side, dual clip 3, no KL term (a reference model costs a
forward pass and modern recipes — DAPO, Dr.GRPO, EasyVideoR1 — train without it), no entropy bonus.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrl.algorithms.advantages import advantage_names, is_token_level
from vrl.algorithms.aggregation import loss_agg_modes
from vrl.algorithms.kl import SAMPLED_TOKEN_KINDS, kl_kinds
from vrl.algorithms.kl_control import kl_controller_names
from vrl.algorithms.policy_loss import RATIO_LEVELS, policy_loss_modes
from vrl.algorithms.rollout_correction import rollout_correction_modes
from vrl.config import choice
from vrl.log import get_logger

logger = get_logger(__name__)


@dataclass
class AlgorithmConfig:
    advantage: str = choice("grpo", advantage_names())
    """Advantage estimator: grpo, drgrpo, gdpo, rloo, grpo_passk, reinforce_plus_plus(_baseline), remax.

    grpo (group mean/std), drgrpo (group mean only), gdpo (per-reward group norm), rloo (leave-one-out),
    grpo_passk (only a group's best response, by its margin over the runner-up), reinforce_plus_plus
    (discounted returns whitened over the batch's tokens), reinforce_plus_plus_baseline (group mean, then
    batch whitening), remax (minus the reward of a greedy response per prompt: one more generation each)."""
    eps: float = 1e-6
    """Added to standard deviations before dividing (advantages)."""
    gamma: float = 1.0
    """Discount of per-token returns (reinforce_plus_plus only; the other estimators do not read it)."""
    policy_loss: str = choice("vanilla", policy_loss_modes())
    """Policy loss: vanilla (PPO clip; GSPO with ratio_level=sequence), gspo_token, cispo.

    gspo_token is GSPO's token form (sequence ratio, per-token advantages); cispo clips and detaches the
    token importance weight, so every token keeps a gradient."""
    clip_low: float = 0.2
    """Lower PPO clip: the ratio is clipped at 1 - clip_low (GSPO uses ~3e-4)."""
    clip_high: float = 0.28
    """Upper PPO clip: the ratio is clipped at 1 + clip_high; > clip_low is DAPO clip-higher (GSPO: ~4e-4)."""
    clip_c: float = 3.0
    """Dual clip bound (> 1) on negative-advantage tokens' loss; 0 disables."""
    ratio_level: str = choice("token", RATIO_LEVELS)
    """Importance ratio of policy_loss=vanilla: token (PPO/GRPO) or sequence (GSPO, with seq_mean_token_mean)."""
    loss_agg_mode: str = choice("token_mean", loss_agg_modes())
    """Loss reduction: token_mean (DAPO), seq_mean_token_mean (GRPO/GSPO), seq_mean_token_sum (Dr.GRPO)."""
    token_sum_norm: float = 1.0
    """Constant divisor of each sequence's token sum in seq_mean_token_sum (Dr.GRPO: max response length)."""
    kl: str = choice("none", kl_kinds())
    """KL(policy || reference) estimator: none, k1, k3 (low variance, clamped), mse (k2), abs (|log ratio|).

    full (exact over the vocabulary) needs full distributions the engines do not return, and is refused."""
    kl_coef: float = 0.01
    """KL weight (only used when kl != none); the starting value under kl_ctrl=adaptive."""
    kl_ctrl: str = choice("fixed", kl_controller_names())
    """KL coefficient control: fixed (kl_coef throughout) or adaptive (scaled towards kl_target each step)."""
    kl_target: float = 0.1
    """Target of the measured KL (actor/kl) under kl_ctrl=adaptive."""
    kl_horizon: float = 10000.0
    """Samples over which kl_ctrl=adaptive may change the coefficient by at most 20 %."""
    kl_as: str = choice("loss", ["loss", "reward"])
    """Apply KL as a loss term (GRPO) or as a per-token reward penalty before advantages (PPO-style)."""
    entropy_coef: float = 0.0
    """Entropy bonus weight: loss -= entropy_coef * aggregated token entropy; 0 disables."""
    dynamic_sampling: bool = False
    """DAPO dynamic sampling: drop groups whose rewards are all equal and generate more to refill."""
    dynamic_sampling_max_rounds: int = 10
    """Generation rounds per step before training on fewer groups; 0 = unlimited."""
    overlong_buffer_len: int = 0
    """DAPO soft overlong punishment: ramp length in tokens before the max response length; 0 disables."""
    overlong_penalty_factor: float = 1.0
    """Reward penalty at (and beyond) the max response length when overlong shaping is on."""
    rollout_correction: str = choice("none", rollout_correction_modes())
    """Correct the policy gradient for the rollout engine sampling from a slightly different distribution
    than the trainer computes (vLLM's kernels, bf16): none, tis (per-token weight min(ρ, cap)) or mis (weight
    ρ, tokens with ρ > cap dropped), ρ = π_train / π_rollout on each sampled token. The step's metrics
    (rollout_corr/*: mean IS ratio, fraction above the cap, KL(rollout || train)) are logged in every mode."""
    rollout_correction_cap: float = 2.0
    """The cap C (>= 1) of rollout_correction=tis|mis on the per-token ratio π_train / π_rollout (also the
    threshold of the rollout_corr/capped_frac metric)."""

    def validate(self) -> None:
        if not 0.0 <= self.clip_low < 1.0:
            raise ValueError(f"algorithm.clip_low must be in [0, 1), got {self.clip_low}")
        if self.clip_high < 0.0:
            raise ValueError(f"algorithm.clip_high must be >= 0, got {self.clip_high}")
        if self.clip_c != 0 and self.clip_c <= 1.0:
            raise ValueError(f"algorithm.clip_c must be > 1 (or 0 to disable dual clip), got {self.clip_c}")
        for name in ("eps", "token_sum_norm", "kl_target", "kl_horizon"):
            if getattr(self, name) <= 0:
                raise ValueError(f"algorithm.{name} must be > 0, got {getattr(self, name)}")
        for name in ("kl_coef", "entropy_coef", "overlong_buffer_len", "overlong_penalty_factor"):
            if getattr(self, name) < 0:
                raise ValueError(f"algorithm.{name} must be >= 0, got {getattr(self, name)}")
        if self.rollout_correction_cap < 1.0:
            raise ValueError(
                f"algorithm.rollout_correction_cap must be >= 1 (a cap below 1 would shrink every on-policy "
                f"token), got {self.rollout_correction_cap}"
            )
        if self.dynamic_sampling_max_rounds < 0:
            raise ValueError("algorithm.dynamic_sampling_max_rounds must be >= 0 (0 = unlimited)")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"algorithm.gamma must be in [0, 1], got {self.gamma}")
        if self.kl not in SAMPLED_TOKEN_KINDS:
            raise ValueError(
                f"algorithm.kl={self.kl} needs the full vocabulary distributions of policy and reference at "
                "every response token; the training engines return the sampled tokens' log-probs only. "
                f"Use one of: {', '.join(k for k in SAMPLED_TOKEN_KINDS if k != 'none')}"
            )
        if self.kl != "none" and self.kl_coef == 0:
            logger.warning("algorithm.kl=%s has no effect with kl_coef=0", self.kl)
        if self.kl_ctrl == "adaptive":
            if self.kl == "none":
                logger.warning("algorithm.kl_ctrl=adaptive has no effect with kl=none")
            elif self.kl_coef == 0:
                raise ValueError("algorithm.kl_ctrl=adaptive scales kl_coef: it must start > 0")
        if self.gamma != 1.0 and self.advantage != "reinforce_plus_plus":
            logger.warning("algorithm.gamma only applies to advantage=reinforce_plus_plus")
        if self.policy_loss == "cispo" and self.ratio_level != "token":
            raise ValueError(
                "algorithm.policy_loss=cispo clips token importance weights: use ratio_level=token"
            )
        if self.dynamic_sampling and self.advantage in ("reinforce_plus_plus", "remax"):
            logger.warning(
                "algorithm.dynamic_sampling drops groups whose rewards are all equal, but advantage=%s has no "
                "group baseline: such groups still carry signal",
                self.advantage,
            )
        if self.token_sum_norm != 1.0 and self.loss_agg_mode != "seq_mean_token_sum":
            logger.warning("algorithm.token_sum_norm only applies to loss_agg_mode=seq_mean_token_sum")
        sequence_ratio = self.policy_loss == "gspo_token" or (
            self.policy_loss == "vanilla" and self.ratio_level == "sequence"
        )
        if sequence_ratio and self.loss_agg_mode != "seq_mean_token_mean":
            logger.warning(
                "GSPO averages each sequence's tokens: pair it with loss_agg_mode=seq_mean_token_mean"
            )

    @property
    def token_level_advantages(self) -> bool:
        """Whether the estimator returns per-token advantages (B, T) (REINFORCE++, ReMax)."""
        return is_token_level(self.advantage)

    @property
    def needs_greedy_baseline(self) -> bool:
        """Whether each prompt needs a greedy response whose reward is the baseline (ReMax)."""
        return self.advantage == "remax"

    @property
    def uses_reference(self) -> bool:
        """Whether a reference-model forward pass is needed."""
        return self.kl != "none" and self.kl_coef > 0
