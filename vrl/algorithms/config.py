"""``AlgorithmConfig``: every knob of the RL objective, one typed group (``algorithm.*`` in the trainer).

Defaults are GRPO as the video-RL references run it: group-whitened advantages, token-mean loss, PPO clip
0.2 with DAPO's clip-higher 0.28 on the upper side, dual clip 3, no KL term (a reference model costs a
forward pass and modern recipes — DAPO, Dr.GRPO, EasyVideoR1 — train without it), no entropy bonus.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrl.algorithms.advantages import advantage_names
from vrl.algorithms.aggregation import loss_agg_modes
from vrl.algorithms.kl import kl_kinds
from vrl.algorithms.policy_loss import RATIO_LEVELS
from vrl.config import choice
from vrl.log import get_logger

logger = get_logger(__name__)


@dataclass
class AlgorithmConfig:
    advantage: str = choice("grpo", advantage_names())
    """Advantage estimator: grpo (group mean/std), drgrpo (group mean only), gdpo (per-reward group norm), rloo."""
    eps: float = 1e-6
    """Added to standard deviations before dividing (advantages)."""
    clip_low: float = 0.2
    """Lower PPO clip: the ratio is clipped at 1 - clip_low (GSPO uses ~3e-4)."""
    clip_high: float = 0.28
    """Upper PPO clip: the ratio is clipped at 1 + clip_high; > clip_low is DAPO clip-higher (GSPO: ~4e-4)."""
    clip_c: float = 3.0
    """Dual clip bound (> 1) on negative-advantage tokens' loss; 0 disables."""
    ratio_level: str = choice("token", RATIO_LEVELS)
    """Importance ratio per token (PPO/GRPO) or per sequence (GSPO, pair with seq_mean_token_mean)."""
    loss_agg_mode: str = choice("token_mean", loss_agg_modes())
    """Loss reduction: token_mean (DAPO), seq_mean_token_mean (GRPO/GSPO), seq_mean_token_sum (Dr.GRPO)."""
    token_sum_norm: float = 1.0
    """Constant divisor of each sequence's token sum in seq_mean_token_sum (Dr.GRPO: max response length)."""
    kl: str = choice("none", kl_kinds())
    """KL(policy || reference) estimator: none, k1, k3 (low variance, clamped), mse (k2)."""
    kl_coef: float = 0.01
    """KL weight (only used when kl != none)."""
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

    def validate(self) -> None:
        if not 0.0 <= self.clip_low < 1.0:
            raise ValueError(f"algorithm.clip_low must be in [0, 1), got {self.clip_low}")
        if self.clip_high < 0.0:
            raise ValueError(f"algorithm.clip_high must be >= 0, got {self.clip_high}")
        if self.clip_c != 0 and self.clip_c <= 1.0:
            raise ValueError(f"algorithm.clip_c must be > 1 (or 0 to disable dual clip), got {self.clip_c}")
        for name in ("eps", "token_sum_norm"):
            if getattr(self, name) <= 0:
                raise ValueError(f"algorithm.{name} must be > 0, got {getattr(self, name)}")
        for name in ("kl_coef", "entropy_coef", "overlong_buffer_len", "overlong_penalty_factor"):
            if getattr(self, name) < 0:
                raise ValueError(f"algorithm.{name} must be >= 0, got {getattr(self, name)}")
        if self.dynamic_sampling_max_rounds < 0:
            raise ValueError("algorithm.dynamic_sampling_max_rounds must be >= 0 (0 = unlimited)")
        if self.kl != "none" and self.kl_coef == 0:
            logger.warning("algorithm.kl=%s has no effect with kl_coef=0", self.kl)
        if self.token_sum_norm != 1.0 and self.loss_agg_mode != "seq_mean_token_sum":
            logger.warning("algorithm.token_sum_norm only applies to loss_agg_mode=seq_mean_token_sum")
        if self.ratio_level == "sequence" and self.loss_agg_mode != "seq_mean_token_mean":
            logger.warning(
                "ratio_level=sequence gives GSPO's gradient only with loss_agg_mode=seq_mean_token_mean"
            )

    @property
    def uses_reference(self) -> bool:
        """Whether a reference-model forward pass is needed."""
        return self.kl != "none" and self.kl_coef > 0
