"""vrl.config: merge order, errors naming valid keys, shorthand/aliases, docs, presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from vrl.config import (
    ConfigError,
    choice,
    field_docs,
    get_preset,
    load,
    parse,
    register_preset,
    save,
    to_yaml,
)


@dataclass
class Engine:
    name: str = choice("fsdp", ["fsdp", "megatron"])
    """Which engine."""
    tensor_parallel_size: int = 1
    """TP degree."""


@dataclass
class Data:
    video_source: str = choice("cache", ["cache", "decode", "prefer_cache"])
    """Frames from the cache or decoded."""
    cache_dir: list[str] = field(default_factory=list)
    """Caches, searched in order."""


@dataclass
class Schema:
    ALIASES: ClassVar[dict[str, str]] = {"video_source": "data.video_source"}
    seed: int = 0
    """Random seed."""
    lr: float = 1e-5
    """Learning rate."""
    tags: list[str] = field(default_factory=lambda: ["a"])
    """Free tags."""
    engine: Engine = field(default_factory=Engine)
    """Training engine."""
    data: Data = field(default_factory=Data)
    """Data."""

    def validate(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")


def test_defaults_and_overrides():
    cfg, show = parse(Schema, ["seed=3", "lr=0.5", "tags=[x,y]", "engine.tensor_parallel_size=2"])
    assert (cfg.seed, cfg.lr, cfg.tags, cfg.engine.tensor_parallel_size) == (3, 0.5, ["x", "y"], 2)
    assert show is False
    assert parse(Schema, ["print_config=true"])[1] is True


def test_group_shorthand_and_alias():
    cfg, _ = parse(Schema, ["engine=megatron", "video_source=decode", "data.cache_dir=[/a,/b]"])
    assert cfg.engine.name == "megatron"
    assert cfg.data.video_source == "decode"
    assert cfg.data.cache_dir == ["/a", "/b"]


def test_yaml_then_cli(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 7\nengine: megatron\ndata:\n  video_source: decode\n")
    cfg, _ = parse(Schema, [f"config={path}", "seed=9"])
    assert (cfg.seed, cfg.engine.name, cfg.data.video_source) == (9, "megatron", "decode")


def test_unknown_key_names_valid_keys_and_closest():
    with pytest.raises(ConfigError) as e:
        parse(Schema, ["sed=1"])
    msg = str(e.value)
    assert "Unknown key 'sed'" in msg and "Did you mean 'seed'" in msg and "engine" in msg and "lr" in msg
    with pytest.raises(ConfigError, match=r"Did you mean 'engine.tensor_parallel_size'"):
        parse(Schema, ["engine.tensor_parallel=2"])


def test_unknown_key_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("engine:\n  tp: 2\n")
    with pytest.raises(ConfigError, match="Valid keys in 'engine': name, tensor_parallel_size"):
        parse(Schema, [f"config={path}"])


@pytest.mark.parametrize(
    ("arg", "pattern"),
    [
        ("seed=abc", "Invalid value for 'seed'"),
        ("engine=deepspeed", "Valid choices: fsdp, megatron"),
        ("seed=-1", "seed must be >= 0"),
        ("noequals", "expected key=value"),
        ("seed.x=1", "is a value, not a group"),
    ],
)
def test_bad_values(arg, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse(Schema, [arg])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="Config file not found"):
        parse(Schema, ["config=/nonexistent.yaml"])


def test_save_load_roundtrip(tmp_path):
    cfg, _ = parse(Schema, ["seed=5", "engine=megatron", "tags=[p]"])
    save(cfg, tmp_path / "config.yaml")
    assert load(Schema, tmp_path / "config.yaml") == cfg


def test_field_docs_and_yaml_comments():
    docs = field_docs(Schema)
    assert docs["seed"] == "Random seed." and docs["engine"] == "Training engine."
    text = to_yaml(parse(Schema, [])[0], with_docs=True)
    assert "seed: 0  # Random seed." in text
    assert "tensor_parallel_size: 1  # TP degree." in text


def test_presets():
    @register_preset("unit-test-stage", "small")
    def _small() -> Schema:
        cfg = Schema()
        cfg.seed = 42
        return cfg

    cfg, _ = parse(get_preset("unit-test-stage", "small"), ["lr=1"])
    assert (cfg.seed, cfg.lr) == (42, 1.0)
    with pytest.raises(ConfigError, match="Known presets: small"):
        get_preset("unit-test-stage", "big")
    with pytest.raises(ValueError, match="already registered"):
        register_preset("unit-test-stage", "small")(_small)
