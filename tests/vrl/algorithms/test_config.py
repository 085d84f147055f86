import dataclasses
import logging

import pytest

from vrl.algorithms.advantages import advantage_names
from vrl.algorithms.config import AlgorithmConfig
from vrl.config import ConfigError, field_docs, parse


def test_defaults_are_grpo_and_valid():
    cfg, _ = parse(AlgorithmConfig, [])
    assert (cfg.advantage, cfg.loss_agg_mode, cfg.ratio_level, cfg.kl) == (
        "grpo",
        "token_mean",
        "token",
        "none",
    )
    assert (cfg.clip_low, cfg.clip_high, cfg.clip_c) == (0.2, 0.28, 3.0)
    assert not cfg.uses_reference


def test_every_field_documented():
    docs = field_docs(AlgorithmConfig)
    assert {f.name for f in dataclasses.fields(AlgorithmConfig)} == set(docs)


def test_overrides_and_choices_match_registries():
    cfg, _ = parse(AlgorithmConfig, ["advantage=gdpo", "kl=k3", "kl_coef=0.04", "ratio_level=sequence"])
    assert cfg.advantage == "gdpo" and cfg.uses_reference
    choices = dataclasses.fields(AlgorithmConfig)[0].metadata["choices"]
    assert list(choices) == advantage_names()
    with pytest.raises(
        ConfigError, match="Valid choices: drgrpo, gdpo, grpo, grpo_passk, reinforce_plus_plus"
    ):
        parse(AlgorithmConfig, ["advantage=ppo"])


@pytest.mark.parametrize(
    "override",
    [
        "clip_c=0.5",
        "clip_low=1.0",
        "eps=0",
        "kl_coef=-1",
        "overlong_buffer_len=-1",
        "dynamic_sampling_max_rounds=-1",
    ],
)
def test_invalid_values_raise(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        parse(AlgorithmConfig, [override])


def test_dual_clip_can_be_disabled():
    cfg, _ = parse(AlgorithmConfig, ["clip_c=0"])
    assert cfg.clip_c == 0


def test_warns_when_option_has_no_effect(caplog):
    with caplog.at_level(logging.WARNING, logger="vrl"):
        parse(AlgorithmConfig, ["kl=k1", "kl_coef=0"])
    assert "no effect" in caplog.text


def test_new_choices_match_their_registries():
    from vrl.algorithms.kl import kl_kinds
    from vrl.algorithms.kl_control import kl_controller_names
    from vrl.algorithms.policy_loss import policy_loss_modes

    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(AlgorithmConfig)}
    assert list(choices["policy_loss"]) == policy_loss_modes()
    assert list(choices["kl"]) == kl_kinds()
    assert list(choices["kl_ctrl"]) == kl_controller_names()
    cfg, _ = parse(
        AlgorithmConfig,
        ["advantage=reinforce_plus_plus", "gamma=0.99", "policy_loss=cispo", "kl=abs", "kl_ctrl=adaptive"],
    )
    assert cfg.token_level_advantages and not cfg.needs_greedy_baseline and cfg.uses_reference
    cfg, _ = parse(AlgorithmConfig, ["advantage=remax"])
    assert cfg.token_level_advantages and cfg.needs_greedy_baseline
    cfg, _ = parse(AlgorithmConfig, ["advantage=grpo_passk", "policy_loss=gspo_token"])
    assert not cfg.token_level_advantages


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (["kl=full", "kl_coef=0.1"], "full vocabulary distributions"),
        (["kl=k3", "kl_ctrl=adaptive", "kl_coef=0"], "must start > 0"),
        (["kl_target=0"], "kl_target"),
        (["kl_horizon=-1"], "kl_horizon"),
        (["gamma=1.5"], "gamma"),
        (["policy_loss=cispo", "ratio_level=sequence"], "cispo"),
        (["policy_loss=gspo"], "Valid choices: cispo, gspo_token, vanilla"),
    ],
)
def test_new_invalid_combinations_raise(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse(AlgorithmConfig, overrides)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (["kl_ctrl=adaptive"], "kl_ctrl=adaptive has no effect"),
        (["gamma=0.9"], "gamma only applies"),
        (["advantage=remax", "dynamic_sampling=true"], "still carry signal"),
        (["policy_loss=gspo_token"], "seq_mean_token_mean"),
    ],
)
def test_new_warnings(caplog, overrides, pattern):
    with caplog.at_level(logging.WARNING, logger="vrl"):
        parse(AlgorithmConfig, overrides)
    assert pattern in caplog.text
