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


@pytest.mark.parametrize(
    ("args", "needed"),
    [
        (["rollout.n=4", "trainer.rollout_batch_size=4"], False),  # one optimizer step per batch
        (["rollout.n=4", "trainer.rollout_batch_size=4", "trainer.global_batch_size=8"], True),
        (["trainer.ppo_epochs=2"], True),
        (["algorithm.kl=k3", "algorithm.kl_as=reward"], True),  # the penalty needs them before the update
        (["algorithm.kl=k3", "algorithm.kl_as=loss"], False),
    ],
)
def test_old_logprob_pass_only_when_the_policy_moves_before_an_update(args, needed):
    from vrl.trainer.components import needs_old_logprobs

    cfg, _ = parse(Config, args)
    assert needs_old_logprobs(cfg) is needed


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["rollout.tensor_parallel_size=2"], "needs rollout.name=vllm"),
        (["rollout.name=vllm", "rollout.tensor_parallel_size=2", "tasks_per_node=1"], "Choose one of"),
        (["rollout.name=vllm", "rollout.data_parallel_size=3", "tasks_per_node=2"], "data_parallel_size=3"),
    ],
)
def test_rollout_layouts_are_refused_at_submit_time(args, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse(Config, args)
    # a layout that fits parses: one vLLM engine per pair of ranks
    cfg, _ = parse(Config, ["rollout.name=vllm", "rollout.tensor_parallel_size=2", "tasks_per_node=2"])
    assert cfg.rollout.tensor_parallel_size == 2
