"""The benchmark covers every problem type and prints the latency table."""

import pytest

from vrl.rewards import canonical_type, known_types
from vrl.rewards.benchmark import CASES, Row, adversarial_responses, format_table, main
from vrl.rewards.config import RewardConfig


def test_corpus_covers_every_type_and_the_big_adversarial_cases():
    assert {canonical_type(name) for name in CASES} == set(known_types())
    bad = adversarial_responses()
    assert max(len(r) for r in bad) >= 1 << 20
    assert any("\\frac{" * 100 in r for r in bad)


def test_table_has_a_row_per_type():
    rows = [Row(name, [0.001, 0.002], [0.004]) for name in CASES]
    table = format_table(rows, 1.0, 3 * len(rows), RewardConfig())
    for name in CASES:
        assert f"| {name} |" in table
    assert "p99 ms" in table and "calls/s/core" in table


@pytest.mark.slow
def test_benchmark_runs(capsys):
    assert main(["num_normal=3", "timeout_s=2", "sandbox_cpu_s=1"]) == 0
    out = capsys.readouterr().out
    assert "score_batch over the whole corpus" in out
