"""Every record of every shipped benchmark annotation file scores its own ground truth as perfect.

The ground truth is re-wrapped as ``<answer>…</answer>`` (for charades_sta.json that is the JSON inside
its ``<think>`` block plus the placeholder token, which the grounding parser skips). No exceptions.
"""

import json
from pathlib import Path

import pytest

from vrl.rewards import RewardConfig, ground_truth, score_batch

ANNOTATIONS = Path("/work/shared/benchmarks/annotations")
FILES = sorted(ANNOTATIONS.glob("*.json*")) if ANNOTATIONS.is_dir() else []


def load(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


@pytest.mark.skipif(not FILES, reason="benchmark annotations are not on this machine")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_ground_truth_scores_perfect(path):
    records = load(path)
    responses = [f"<think>checking</think><answer>{ground_truth(r)}</answer>" for r in records]
    results = score_batch(records, responses, RewardConfig(require_think=True))
    failures = [
        (r.get("problem_id"), r["problem_type"], res)
        for r, res in zip(records, results)
        if res["accuracy"] != pytest.approx(1.0)
        or res["format"] != 1.0
        or res["overall"] != pytest.approx(1.0)
    ]
    assert not failures, f"{len(failures)} of {len(records)} records: {failures[:5]}"


@pytest.mark.skipif(not FILES, reason="benchmark annotations are not on this machine")
def test_every_problem_type_in_the_annotations_is_registered():
    from vrl.rewards import canonical_type

    types = {r["problem_type"] for path in FILES for r in load(path)}
    assert types == {
        "multiple choice",
        "open-ended",
        "numerical",
        "regression",
        "temporal grounding",
        "spatial-temporal grounding",
        "caption",
        "REC",
        "SSR",
        "CRR",
    }
    for name in types:
        canonical_type(name)
