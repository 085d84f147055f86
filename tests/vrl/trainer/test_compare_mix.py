"""``python -m vrl.trainer.compare_mix``: seeds, runs read back, mean ± sd over seeds, table and plot."""

import json
import math

import pytest

from vrl.trainer.compare_mix import (
    aggregate,
    main,
    markdown,
    plot,
    read_run,
    refuse_keys,
    run_argv,
    take_seeds,
)


def test_seeds_parse_and_leave_the_other_keys():
    assert take_seeds(["a=1"]) == ([1, 2, 3], ["a=1"])
    assert take_seeds(["seeds=[4,5]", "b=2"]) == ([4, 5], ["b=2"])
    assert take_seeds(["seeds=7,8,9"])[0] == [7, 8, 9]
    with pytest.raises(ValueError, match="distinct"):
        take_seeds(["seeds=[1,1]"])
    with pytest.raises(ValueError, match="integers"):
        take_seeds(["seeds=[a]"])


def test_run_argv_sets_the_arm_and_the_seed_last():
    argv = run_argv("cmp", "mix on", 2, ["trainer.total_steps=10"], ["mix.enable=true"])
    assert argv == [
        "stage=train",
        "name=cmp-mix-on-seed2",
        "wait=true",
        "trainer.total_steps=10",
        "mix.enable=true",
        "trainer.seed=2",
    ]
    with pytest.raises(ValueError, match=r"trainer\.seed"):
        refuse_keys(["trainer.seed=3", "x=1"], ("mix.enable", "trainer.seed"), "compare_mix")
    with pytest.raises(SystemExit, match=r"mix\.enable"):
        main(["mix.enable=false"])  # refused before any run is launched


def _run(tmp_path, name, color, boolean):
    """A run folder whose metrics hold family validations at steps 0, 5, 10 and one RL row."""
    d = tmp_path / name
    d.mkdir()
    rows = [
        {"step": s, "val/family/color": c, "val/family/boolean": b, "val/family_chance/color": 1 / 6,
         "val/family_chance/boolean": 0.5, "val/accuracy": (c + b) / 2, "val/format": 1.0}
        for s, c, b in zip((0, 5, 10), color, boolean)
    ]  # fmt: skip
    rows.insert(1, {"step": 3, "reward/overall": 0.5, "mix/groups_with_offline": 4.0})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {**read_run(d), "wall_s": 60.0}


def test_mean_and_sd_over_seeds_per_family_and_step(tmp_path):
    runs = {
        "mix on": {s: _run(tmp_path, f"on{s}", (0.2, 0.4, c), (0.5, 0.6, 0.7)) for s, c in zip((1, 2, 3), (0.2, 0.4, 0.6))},
        "mix off": {s: _run(tmp_path, f"off{s}", (0.2, 0.2, 0.2), (0.5, 0.5, 0.5)) for s in (1, 2, 3)},
    }  # fmt: skip
    assert runs["mix on"][1]["curves"]["color"] == {0: 0.2, 5: 0.4, 10: 0.2}
    assert runs["mix on"][1]["offline_groups"] == 4.0
    assert runs["mix on"][1]["curves"]["answer format"] == {0: 1.0, 5: 1.0, 10: 1.0}
    assert runs["mix on"][1]["curves"]["all records"][10] == (0.2 + 0.7) / 2
    agg = aggregate(runs)
    m, sd, n = agg["arms"]["mix on"]["color"]["end"]
    assert (round(m, 9), round(sd, 9), n) == (0.4, 0.2, 3)  # 0.2, 0.4, 0.6: sample sd 0.2
    assert agg["arms"]["mix off"]["boolean"]["steps"][5] == [0.5, 0.0, 3]
    assert math.isclose(agg["chance"]["color"], 1 / 6)
    table = markdown(agg, "Offline mixing", [1, 2, 3], ["a note"])
    assert "mean ± sd over seeds 1, 2, 3" in table
    assert "| family | chance | mix on | mix off | mix on − mix off |" in table
    assert "| color | 0.167 | 0.400 ± 0.200 | 0.200 ± 0.000 | +0.200 |" in table
    assert "## boolean per validated step (chance 0.500)" in table
    assert "| answer format | – | 1.000 ± 0.000 | 1.000 ± 0.000 | +0.000 |" in table
    assert "| 5 | 0.600 ± 0.000 | 0.500 ± 0.000 |" in table and table.rstrip().endswith("a note")
    # the aggregate survives a JSON round trip (string step keys) for the plot
    out = plot(json.loads(json.dumps(agg)), tmp_path / "c.png", "t", "step")
    assert out is not None and out.stat().st_size > 1000
