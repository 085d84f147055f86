import dataclasses
from pathlib import Path

import pytest

from vrl.config import ConfigError, field_docs, parse
from vrl.launch.context import RunContext
from vrl.toy import stage


def test_stage_config_has_toy_and_launch_keys_documented():
    cfg, _ = parse(stage.Config, ["num_train=6", "num_val=2", "families=[color,math]", "cluster=debug"])
    assert cfg.num_train == 6 and cfg.families == ["color", "math"] and cfg.cluster == "debug"
    docs = field_docs(stage.Config)
    assert all(f.name in docs for f in dataclasses.fields(stage.Config))
    with pytest.raises(ConfigError, match="Known families"):
        parse(stage.Config, ["families=[colr]"])


def test_stage_run_generates_and_summarizes(tmp_path):
    out = tmp_path / "suite"
    cfg, _ = parse(stage.Config, ["num_train=6", "num_val=2", "families=[color,math]", f"out={out}"])
    summary = stage.run(cfg, RunContext(run_dir=tmp_path / "run"))
    assert summary["suite_dir"] == str(out)
    assert summary["num_records"] == {"train": 6, "val": 2}
    assert Path(summary["train"]).is_file() and Path(summary["val"]).is_file()
    assert summary["problem_types"] == {"math": 4, "multiple choice": 4}
    # the hash ignores launch keys: the same suite whatever cluster/name it was launched with
    other, _ = parse(
        stage.Config, ["num_train=6", "num_val=2", "families=[color,math]", "name=x", f"out={out}"]
    )
    assert stage.run(other, RunContext(run_dir=tmp_path / "run2"))["content_hash"] == summary["content_hash"]
