"""The rules of resuming, without training: which setting changes need resume.allow_changes, how metric
history is rewound to a checkpoint, and the schedule keys that would lose checkpoints."""

from __future__ import annotations

import json

import pytest

from vrl.config import ConfigError, parse, to_dict
from vrl.trainer import resume
from vrl.trainer.config import Config


def _cfg(*args: str) -> dict:
    return to_dict(parse(Config, list(args))[0])


def test_keep_checkpoints_zero_is_rejected():
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        parse(Config, ["trainer.keep_checkpoints=0"])


def test_allow_changes_names_must_be_config_keys():
    with pytest.raises(ConfigError, match=r"resume\.allow_changes.*engine\.lrr.*engine\.lr"):
        parse(Config, ["resume.allow_changes=[engine.lrr]"])


def test_changes_list_every_differing_key_and_skip_where_it_runs():
    saved = _cfg("engine.lr=1e-6", "trainer.seed=1", "cluster=local", "name=a")
    now = _cfg("engine.lr=1e-4", "trainer.seed=2", "algorithm.advantage=rloo", "cluster=slurm", "name=b")
    changes = resume.config_changes(saved, now)
    assert changes == {
        "engine.lr": (1e-6, 1e-4),
        "trainer.seed": (1, 2),
        "algorithm.advantage": ("grpo", "rloo"),
    }
    with pytest.raises(ConfigError) as err:
        resume.check_allowed(changes, ["engine.lr"], "runs/train/a")
    message = str(err.value)
    assert "trainer.seed: 1 -> 2" in message and "algorithm.advantage: 'grpo' -> 'rloo'" in message
    assert "engine.lr" not in message.split("resume.allow_changes")[0].split("differ")[1]
    resume.check_allowed(changes, ["engine.lr", "trainer.seed", "algorithm.advantage"], "runs/train/a")


def test_keys_added_or_removed_since_the_checkpoint():
    """Settings from an older vrl lack newer keys: at their default they are no change; a key the schema
    dropped cannot be applied, so it is not compared."""
    saved = _cfg()
    del saved["trainer"]["seed"]
    saved["trainer"]["retired_knob"] = 3
    defaults = to_dict(Config())
    assert resume.config_changes(saved, _cfg(), defaults) == {}
    assert resume.config_changes(saved, _cfg("trainer.seed=5"), defaults) == {
        "trainer.seed": (resume.ABSENT, 5)
    }


def test_metrics_are_rewound_to_the_checkpoint(tmp_path):
    lines = [{"step": s, "x": s} for s in (0, 1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    resume.rewind_history(tmp_path, 2)
    assert [json.loads(r)["step"] for r in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]
    resume.rewind_history(tmp_path, None)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_tensorboard_forgets_the_steps_after_the_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    for step in range(4):
        writer.add_scalar("a", step, step)
    writer.close()
    resume.rewind_history(tmp_path, 1)
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    for step in (2, 3):
        writer.add_scalar("a", 10 + step, step)
    writer.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("a")] == [(0, 0), (1, 1), (2, 12), (3, 13)]
    resume.rewind_history(tmp_path, None)
    assert not (tmp_path / "tb").exists()
