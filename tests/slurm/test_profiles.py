"""Every Slurm profile in slurm/profiles/ has exactly the keys the launcher reads, with usable types."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from slurm_cluster import REPO

from vrl.config import ConfigError
from vrl.launch.profiles import load_profile

PROFILES = sorted((REPO / "slurm" / "profiles").glob("*.yaml"))


def test_local_and_example_profiles_exist() -> None:
    assert {p.stem for p in PROFILES} >= {"local", "example"}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_loads_through_the_launcher_schema(path: Path) -> None:
    """The launcher's own typed loader accepts the file: no unknown keys, no wrong types."""
    profile = load_profile(str(path))
    raw = yaml.safe_load(path.read_text())
    assert set(raw) <= set(dataclasses.asdict(profile))
    assert profile.time_min > 0 and profile.signal_delay_s >= 0
    assert all(isinstance(line, str) for line in profile.setup)


def test_unknown_profile_key_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("partition: debug\npartitoin: gpu\n")
    with pytest.raises(ConfigError, match="Did you mean 'partition'"):
        load_profile(str(bad))


def test_local_profile_matches_local_cluster() -> None:
    """The local profile targets what slurm/local/slurm.conf.in defines: partition debug, no GPUs."""
    profile = yaml.safe_load((REPO / "slurm" / "profiles" / "local.yaml").read_text())
    conf = (REPO / "slurm" / "local" / "slurm.conf.in").read_text()
    assert f"PartitionName={profile['partition']} " in conf
    assert profile["gpus_per_task"] == 0
    assert "GresTypes" not in conf
