"""Every Slurm profile in slurm/profiles/ has exactly the keys the launcher reads, with usable types."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from slurm_cluster import REPO

PROFILES = sorted((REPO / "slurm" / "profiles").glob("*.yaml"))

# key -> allowed types (None: the key may be null).
SCHEMA: dict[str, tuple[type | None, ...]] = {
    "partition": (str,),
    "account": (str, None),
    "qos": (str, None),
    "time_min": (int,),
    "mem_gb": (int, float, None),
    "cpus_per_task": (int,),
    "gpus_per_task": (int,),
    "nodes": (int,),
    "tasks_per_node": (int,),
    "signal_delay_s": (int,),
    "additional": (dict,),
    "setup": (list,),
}


def test_local_and_example_profiles_exist() -> None:
    assert {p.stem for p in PROFILES} >= {"local", "example"}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_keys_and_types(path: Path) -> None:
    profile = yaml.safe_load(path.read_text())
    assert set(profile) == set(SCHEMA), f"{path.name}: keys differ from the launcher's"
    for key, allowed in SCHEMA.items():
        value = profile[key]
        ok = (value is None and None in allowed) or any(
            t is not None and isinstance(value, t) and not isinstance(value, bool) for t in allowed
        )
        assert ok, f"{path.name}: {key}={value!r} is not one of {allowed}"
    assert all(isinstance(line, str) for line in profile["setup"])
    assert profile["time_min"] > 0 and profile["signal_delay_s"] >= 0


def test_local_profile_matches_local_cluster() -> None:
    """The local profile targets what slurm/local/slurm.conf.in defines: partition debug, no GPUs."""
    profile = yaml.safe_load((REPO / "slurm" / "profiles" / "local.yaml").read_text())
    conf = (REPO / "slurm" / "local" / "slurm.conf.in").read_text()
    assert f"PartitionName={profile['partition']} " in conf
    assert profile["gpus_per_task"] == 0
    assert "GresTypes" not in conf
