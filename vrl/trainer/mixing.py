"""Mixed offline/online groups: put a record's ``offline_output`` trajectory into its GRPO group.

Plain EasyVideoR1 behaviour (``mix.accuracy_threshold`` < 0): every group has ``num_offline_per_group`` of
its ``n`` slots filled by offline trajectories, and only ``n - k`` responses are sampled. With a threshold
(LUFFY-style guidance only where the policy fails): all ``n`` are sampled, and in groups whose online
accuracy is below the threshold the last ``k`` online samples (sampling is i.i.d., so the last ones are
a random choice) are replaced. Offline trajectories are marked ``offpolicy``; with ``mix.policy_shaping``
their loss uses f(p) = p / (p + γ) instead of the clipped ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vrl.batch import Prompt, Trajectory


@dataclass
class MixConfig:
    enable: bool = True
    """Mix offline trajectories (records' `offline_output`) into online groups."""
    num_offline_per_group: int = 1
    """Slots of each group's n samples given to offline trajectories."""
    accuracy_threshold: float = -1.0
    """Replace only in groups whose online accuracy is below this; < 0: always (EasyVideoR1 behaviour)."""
    policy_shaping: bool = True
    """LUFFY policy shaping f(p) = p / (p + gamma) on off-policy tokens (else treated like on-policy samples)."""
    gamma: float = 0.1
    """The gamma of policy shaping."""

    def validate(self) -> None:
        if self.num_offline_per_group < 0:
            raise ValueError("mix.num_offline_per_group must be >= 0")
        if self.gamma <= 0:
            raise ValueError("mix.gamma must be > 0")

    @property
    def always(self) -> bool:
        return self.accuracy_threshold < 0


@dataclass
class MixStats:
    groups: int = 0
    groups_with_offline: int = 0
    groups_missing_offline: int = 0
    offline_rewards: list[float] | None = None

    def metrics(self) -> dict[str, float]:
        rewards = self.offline_rewards or []
        out = {
            "mix/groups_with_offline": float(self.groups_with_offline),
            "mix/groups_missing_offline": float(self.groups_missing_offline),
            "mix/frac_groups_with_offline": self.groups_with_offline / max(1, self.groups),
        }
        if rewards:
            out["mix/offline_reward_mean"] = sum(rewards) / len(rewards)
        return out


def online_samples_per_group(cfg: MixConfig, n: int) -> int:
    """How many responses to sample per prompt."""
    if cfg.enable and cfg.always:
        return max(1, n - cfg.num_offline_per_group)
    return n


def mix_groups(
    cfg: MixConfig,
    groups: list[list[Trajectory]],
    make_offline: Callable[[Prompt], Trajectory | None],
    accuracy: Callable[[Trajectory], float],
    n: int,
) -> MixStats:
    """Insert offline trajectories into ``groups`` in place (rewards of online samples already scored)."""
    stats = MixStats(groups=len(groups), offline_rewards=[])
    if not cfg.enable or cfg.num_offline_per_group == 0:
        return stats
    k = cfg.num_offline_per_group
    for group in groups:
        if not group:
            continue
        if not cfg.always:
            acc = sum(accuracy(t) for t in group) / len(group)
            if acc >= cfg.accuracy_threshold:
                continue
        offline = [make_offline(group[0].prompt) for _ in range(k)]
        if any(o is None for o in offline):
            stats.groups_missing_offline += 1
            continue
        for o in offline:
            o.group = group[0].group
        if cfg.always:
            group.extend(offline)  # type: ignore[arg-type]
        else:
            group[len(group) - k :] = offline  # type: ignore[assignment]
        assert len(group) <= n
        stats.groups_with_offline += 1
    return stats
