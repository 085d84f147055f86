"""``python -m vrl.trainer.compare_mix``: curves read back from metrics rows, the side-by-side table."""

from vrl.trainer.compare_mix import curve, markdown, plot


def _result(points, offline):
    rows = [{"step": s, "val/acc_mc_bool": a, "val/chance_mc_bool": 0.33} for s, a in points]
    rows.insert(1, {"step": 3, "reward/overall": 0.5, "mix/groups_with_offline": offline})
    final = {**rows[-1], "val/accuracy/boolean": points[-1][1]}
    return {"curve": curve(rows), "final": final, "chance": 0.33, "offline_groups": offline, "wall_s": 60.0,
            "run_dir": "runs/x"}  # fmt: skip


def test_curves_side_by_side(tmp_path):
    results = {
        "mix on": _result([(0, 0.3), (5, 0.6), (10, 0.8)], 8),
        "mix off": _result([(0, 0.3), (10, 0.5)], 0),
    }
    assert results["mix on"]["curve"] == {0: 0.3, 5: 0.6, 10: 0.8}
    table = markdown(results)
    assert "| step | mix on | mix off |" in table
    assert "| 5 | 0.600 |  |" in table and "| 10 | 0.800 | 0.500 |" in table
    assert "| val/accuracy/boolean | 0.800 | 0.500 |" in table and "(chance 0.330)" in table
    assert "mix on: offline trajectories mixed into 8 groups" in table
    plot(results, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
