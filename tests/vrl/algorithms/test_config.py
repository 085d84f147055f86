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
    with pytest.raises(ConfigError, match="Valid choices: drgrpo, gdpo, grpo, rloo"):
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
