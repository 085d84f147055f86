import hashlib
import json
import threading
from pathlib import Path

import pytest
from toy_helpers import SMALL, read_records

from vrl.toy import ToyConfig, ensure_toy_suite, suite_dir
from vrl.toy import suite as suite_mod
from vrl.toy.spec import PROBLEM_TYPES

FIELDS = (
    "problem_id",
    "problem",
    "problem_type",
    "options",
    "solution",
    "path",
    "data_type",
    "offline_output",
)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_records_have_the_unified_fields(small_suite, records):
    assert len(records) == SMALL["num_train"] + SMALL["num_val"]
    assert len({r["problem_id"] for r in records}) == len(records)
    for r in records:
        assert all(k in r for k in FIELDS), r["problem_id"]
        assert r["data_source"] == "toy" and r["task"]
        assert r["problem_type"] in PROBLEM_TYPES
        assert r["data_type"] in ("video", "image")
        assert (small_suite / r["path"]).is_file() and not Path(r["path"]).is_absolute()
        assert r["solution"].startswith("<answer>") and r["solution"].endswith("</answer>")
        answer = r["solution"][len("<answer>") : -len("</answer>")]
        assert r["offline_output"].startswith("<think>")
        assert r["offline_output"].endswith(f"</think><answer>{answer}</answer>")
        if r["problem_type"] == "multiple choice":
            letters = [o.split(". ", 1)[0] for o in r["options"]]
            assert letters == list("ABCDEF"[: len(letters)]) and answer in letters
        else:
            assert r["options"] == []
        if r["problem_type"] in (
            "temporal grounding",
            "spatial grounding",
            "spatial-temporal grounding",
            "tracking",
        ):
            assert isinstance(json.loads(answer), dict)


def test_every_problem_type_and_media_kind_present(records):
    assert {r["problem_type"] for r in records} == set(PROBLEM_TYPES)
    assert {r["data_type"] for r in records} == {"video", "image"}
    scenes = [r["scene"] for r in records]
    assert any(s["width"] % 2 or s["height"] % 2 for s in scenes)  # odd sizes
    assert any(s["rate"] == "30000/1001" for s in scenes)
    assert any(s["vfr"] for s in scenes)
    assert any(r["path"].endswith(".jpg") for r in records) and any(
        r["path"].endswith(".png") for r in records
    )


def test_manifest_describes_the_suite(small_suite):
    manifest = json.loads((small_suite / "manifest.json").read_text())
    assert manifest["content_hash"] == ToyConfig(**SMALL).content_hash()
    assert manifest["num_records"] == {"train": SMALL["num_train"], "val": SMALL["num_val"]}
    assert sum(manifest["problem_types"].values()) == SMALL["num_train"] + SMALL["num_val"]
    assert not (small_suite / ".partial").exists()


def test_same_seed_gives_byte_identical_suite(small_suite, tmp_path):
    again = ensure_toy_suite(ToyConfig(**SMALL, out=str(tmp_path / "again")))
    assert _tree_hashes(again) == _tree_hashes(small_suite)


def test_other_seed_gives_other_records(small_suite):
    other = suite_mod.plan_split(ToyConfig(**{**SMALL, "seed": SMALL["seed"] + 1}), "train")
    assert [r for r, _ in other] != read_records(small_suite, "train")


def test_train_and_val_differ(records):
    train = {
        r["problem"] + json.dumps(r["scene"]) for r in records if r["problem_id"].startswith("toy-train")
    }
    val = {r["problem"] + json.dumps(r["scene"]) for r in records if r["problem_id"].startswith("toy-val")}
    assert not train & val


def _count_renders(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = suite_mod.render

    def counting(scene, out):
        calls.append(Path(out).name)
        return real(scene, out)

    monkeypatch.setattr(suite_mod, "render", counting)
    return calls


TINY = {"num_train": 4, "num_val": 2, "families": ["color", "math"], "coverage_every": 0}


def test_complete_suite_is_reused_and_interrupted_one_resumes(tmp_path, monkeypatch):
    cfg = ToyConfig(**TINY, out=str(tmp_path / "s"))
    out = ensure_toy_suite(cfg)
    calls = _count_renders(monkeypatch)
    assert ensure_toy_suite(cfg) == out and calls == []
    # simulate an interrupted run: no manifest, one media file missing, the marker of this config present
    (out / "manifest.json").unlink()
    (out / ".partial").write_text(cfg.content_hash() + "\n")
    missing = sorted((out / "videos").iterdir())[0]
    missing.unlink()
    ensure_toy_suite(cfg)
    assert calls == [missing.name]
    assert (out / "manifest.json").is_file()


def test_changed_config_regenerates_in_place(tmp_path):
    out = tmp_path / "s"
    ensure_toy_suite(ToyConfig(**TINY, out=str(out)))
    cfg2 = ToyConfig(**{**TINY, "seed": 9}, out=str(out))
    ensure_toy_suite(cfg2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["content_hash"] == cfg2.content_hash()
    assert [r for r, _ in suite_mod.plan_split(cfg2, "train")] == read_records(out, "train")


def test_concurrent_callers_generate_once(tmp_path, monkeypatch):
    cfg = ToyConfig(**TINY, out=str(tmp_path / "s"))
    calls = _count_renders(monkeypatch)
    results = []
    threads = [threading.Thread(target=lambda: results.append(ensure_toy_suite(cfg))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert len(calls) == TINY["num_train"] + TINY["num_val"]


def test_default_directory_is_under_vrl_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VRL_HOME", str(tmp_path))
    cfg = ToyConfig(**TINY)
    assert suite_dir(cfg) == tmp_path / "toy" / f"toy-{cfg.content_hash()}"
    assert ToyConfig(**TINY, out="/elsewhere").content_hash() == cfg.content_hash()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"families": ["colour"]}, "Known families: color, shape"),
        ({"num_train": 0, "num_val": 0}, "not both 0"),
        ({"min_side": 20}, "min_side"),
        ({"fps_choices": []}, "fps_choices"),
    ],
)
def test_invalid_config_is_rejected(override, message):
    with pytest.raises(ValueError, match=message):
        ToyConfig(**override).validate()
