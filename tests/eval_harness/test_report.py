"""Reports: results.json per benchmark, report.md with official scores and deltas, the bar chart."""

from __future__ import annotations

import json

import pytest

from eval_harness.official import REFERENCES, find_reference
from eval_harness.report import render_markdown, write_reports


def _entry(name, title, overall, **extra):
    return {
        "benchmark": name, "title": title, "metric": "accuracy; subsets", "num_records": 10, "num_scored": 10,
        "num_missing": 0, "num_errors": 0, "overall": overall, "subsets": {"short": 50.0}, "counts": {"short": 4},
        **extra,
    }  # fmt: skip


def test_reference_matching():
    assert find_reference("auto", "/models/Qwen2.5-VL-7B-Instruct").model == "Qwen2.5-VL-7B-Instruct"
    assert find_reference("auto", "/runs/train/x/final") is None
    assert find_reference("qwen2.5-vl-7b-instruct", "x").scores["videomme"] == 65.1
    assert find_reference("none", "Qwen2.5-VL-7B-Instruct") is None
    with pytest.raises(ValueError, match=r"Known: auto, none, Qwen2\.5-VL-7B-Instruct"):
        find_reference("gpt", "x")


def test_official_numbers_are_the_reported_ones():
    scores = REFERENCES["Qwen2.5-VL-7B-Instruct"].scores
    assert scores == {
        "videomme": 65.1, "videommmu": 47.4, "mmvu": 50.1, "mvbench": 69.6, "longvideobench": 56.0,
        "lvbench": 45.3, "mlvu_dev": 70.2, "tempcompass": 71.7, "charades_sta": 43.6,
    }  # fmt: skip


def test_reports_show_official_score_and_delta(tmp_path):
    entries = {
        "videomme": _entry("videomme", "Video-MME", 61.3, errors={"media_missing": 2}, num_errors=2),
        "vsibench": _entry(
            "vsibench", "VSI-Bench", 30.0, num_missing=3, details={"object_rel_direction_easy": 1.0}
        ),
    }
    meta = {"model": "Qwen2.5-VL-7B-Instruct", "settings": {"engine": "vllm", "video_spec": {"fps": 2.0}}}
    paths = write_reports(tmp_path, entries, meta, find_reference("auto", meta["model"]))
    results = json.loads(paths["results"].read_text())
    vmme = results["videomme"]
    assert vmme["official"] == 65.1 and vmme["delta"] == pytest.approx(61.3 - 65.1)
    assert "official" not in results["vsibench"] and set(results) == {"videomme", "vsibench"}
    assert vmme["model"] == "Qwen2.5-VL-7B-Instruct" and vmme["settings"]["engine"] == "vllm"
    assert json.loads((tmp_path / "results" / "vsibench.json").read_text())["overall"] == 30.0
    report = paths["report"].read_text()
    assert "| Video-MME | accuracy | 61.3 | 65.1 | -3.8 | 10 | 0 | 2 |" in report
    assert "65.1 without subtitles" in report and "## VSI-Bench" in report
    assert "3 of 10 records have no prediction" in report and "media_missing: 2" in report
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_without_reference():
    text = render_markdown({"toy": _entry("toy", "Toy suite", 12.5)}, {"model": "m", "settings": {}}, None)
    assert "reference: none" in text and "| **overall** | **12.5** | 10 | – | – |" in text
