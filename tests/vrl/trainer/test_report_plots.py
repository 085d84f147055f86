"""reward_curve.png: a warm-start panel and an RL panel on their own step axes; validation.md per family."""

from __future__ import annotations

from PIL import Image

from vrl.trainer import report
from vrl.trainer.validation import _metrics

N_SFT = 10


def val(acc: float, color: float) -> dict[str, float]:
    return {
        "val/accuracy": acc,
        "val/format": 1.0,
        "val/num_records": 20.0,
        "val/acc_mc_bool": acc,
        "val/chance_mc_bool": 0.3,
        "val/family/color": color,
        "val/family_chance/color": 1 / 6,
        "val/accuracy/multiple_choice": color,
    }


def run_rows() -> list[dict]:
    rows = [{"step": 0, **val(0.25, 0.1)}]
    rows += [{"step": s, "sft/nll": 3.0 / s, "sft/step_s": 0.5} for s in range(1, N_SFT + 1)]
    rows.append({"step": N_SFT, **val(0.5, 0.4)})
    for k in range(1, 6):
        row = {"step": N_SFT + k, "reward/overall": 0.1 * k, "reward/accuracy": 0.1 * k, "perf/step_s": 2.0}
        rows.append({**row, **(val(0.75, 0.7) if k == 5 else {})})
    return rows


def test_two_panels_each_on_its_own_axis(tmp_path):
    both = report.reward_curve(run_rows(), tmp_path / "both.png", title="t")
    rl_only = [r for r in run_rows() if "sft/nll" not in r]
    one = report.reward_curve(rl_only, tmp_path / "rl.png")
    assert both is not None and one is not None
    assert Image.open(both).size[0] > 1.8 * Image.open(one).size[0]  # two panels side by side
    assert report.warm_start_steps(run_rows()) == N_SFT and report.warm_start_steps(rl_only) == 0
    sft_only = [r for r in run_rows() if "reward/overall" not in r]
    assert report.reward_curve(sft_only, tmp_path / "sft.png") is not None
    assert report.reward_curve([{"step": 0, **val(0.1, 0.1)}], tmp_path / "none.png") is None


def test_validation_md_shows_warm_start_rl_gain_and_chance():
    rows = run_rows()
    text = report.validation_markdown(rows, rows[0], rows[-1])
    assert "| before | after warm start | after RL | RL gain |" in text
    assert "| family `color` | 0.167 | 0.100 | 0.400 | 0.700 | +0.300 |" in text
    assert "| **all records** | – | 0.250 | 0.500 | 0.750 | +0.250 |" in text
    no_warm = report.validation_markdown([rows[0], rows[-1]], rows[0], rows[-1])
    assert "after warm start" not in no_warm and "| family `color` | 0.167 | 0.100 | 0.700 |" in no_warm


def test_run_report_table_leaves_chance_rows_out():
    text = report.validation_table(val(0.25, 0.1), val(0.5, 0.4))
    assert "| family/color | 0.100 | 0.400 |" in text and "family_chance" not in text


def test_validation_metrics_per_family_with_chance():
    totals = {"n": 4.0, "acc": 2.0, "format": 4.0, "n/headline": 0.0, "acc/headline": 0.0}
    totals |= {"chance/headline": 0.0, "n/task/color": 3.0, "acc/task/color": 1.0, "chance/task/color": 0.5}
    totals |= {"n/task/other": 1.0, "acc/task/other": 1.0, "chance/task/other": 0.0}
    out = _metrics(totals)
    assert abs(out["val/family/color"] - 1 / 3) < 1e-9 and abs(out["val/family_chance/color"] - 1 / 6) < 1e-9
    assert out["val/family/other"] == 1.0 and out["val/accuracy"] == 0.5
