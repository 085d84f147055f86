"""The train schema: defaults validate, and inconsistent batch layouts fail with the reason."""

from __future__ import annotations

import pytest

from vrl.config import ConfigError, parse
from vrl.trainer.config import Config


def test_defaults_and_aliases_validate():
    cfg, _ = parse(Config, ["video_source=decode", "cache_dir=[/a,/b]", "engine=fsdp"])
    assert cfg.data.video_source == "decode" and cfg.data.cache_dir == ["/a", "/b"]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["rollout.n=8", "trainer.global_batch_size=12"], "not a multiple of the group size rollout.n=8"),
        (
            ["rollout.n=4", "trainer.rollout_batch_size=3", "trainer.global_batch_size=8"],
            "must divide the step",
        ),
        (["tasks_per_node=2", "trainer.rollout_batch_size=3"], "multiple of the data-parallel size"),
        (["mix.num_offline_per_group=8", "rollout.n=8"], "groups need online samples"),
        (["engine.tensor_parallel_size=2"], "need engine=megatron"),
        (["reward.accuracy_weight=0.5"], "sum to 1"),
        (["data.video_source=disk"], "Valid choices: cache, decode, prefer_cache"),
        (["rollout.tempreature=1"], "Did you mean 'rollout.temperature'"),
    ],
)
def test_bad_layouts_fail_with_the_reason(args, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse(Config, args)
