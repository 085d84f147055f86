"""Golden values for the loss aggregation modes.

loss_mat rows: [1, 2, 3, 100] with mask [1, 1, 1, 0] (3 tokens) and [4, 4, -, -] with mask [1, 1, 0, 0];
a third row is all padding (ignored by the seq modes' sequence count).
"""

import math

import pytest
import torch

from vrl.algorithms.aggregation import aggregate_loss, loss_agg_modes

LOSS = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 4.0, float("nan"), float("inf")], [9.0, 9.0, 9.0, 9.0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]])


def test_modes_registered():
    assert loss_agg_modes() == ["seq_mean_token_mean", "seq_mean_token_sum", "token_mean"]


def test_token_mean_golden():
    # (1 + 2 + 3 + 4 + 4) / 5 tokens; masked NaN/inf do not leak
    assert aggregate_loss(LOSS, MASK, "token_mean").item() == pytest.approx(14 / 5)


def test_seq_mean_token_mean_golden():
    # (mean(1,2,3) + mean(4,4)) / 2 sequences with tokens
    assert aggregate_loss(LOSS, MASK, "seq_mean_token_mean").item() == pytest.approx((2 + 4) / 2)


def test_seq_mean_token_sum_golden_and_constant_normaliser():
    # (sum(1,2,3) + sum(4,4)) / 2 sequences, each sum divided by the constant token_sum_norm
    assert aggregate_loss(LOSS, MASK, "seq_mean_token_sum").item() == pytest.approx((6 + 8) / 2)
    got = aggregate_loss(LOSS, MASK, "seq_mean_token_sum", token_sum_norm=4.0)
    assert got.item() == pytest.approx((6 + 8) / 2 / 4)


def test_bool_mask_equals_int_mask():
    for mode in loss_agg_modes():
        a = aggregate_loss(LOSS, MASK, mode)
        b = aggregate_loss(LOSS, MASK.bool(), mode)
        assert a.item() == b.item()


@pytest.mark.parametrize("mode", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"])
def test_micro_batches_with_global_denominators_add_up(mode):
    gen = torch.Generator().manual_seed(0)
    loss = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    mask = torch.rand(6, 5, generator=gen) > 0.3
    mask[:, 0] = True
    full = aggregate_loss(loss, mask, mode, token_sum_norm=5.0)
    glob = {"num_tokens": float(mask.sum()), "num_seqs": 6.0}
    parts = [
        aggregate_loss(loss[i : i + 2], mask[i : i + 2], mode, token_sum_norm=5.0, **glob) for i in (0, 2, 4)
    ]
    assert math.isclose(float(sum(parts)), float(full), rel_tol=1e-12)


def test_empty_mask_gives_zero_not_nan():
    for mode in loss_agg_modes():
        assert aggregate_loss(torch.ones(2, 3), torch.zeros(2, 3), mode).item() == 0.0


def test_errors():
    with pytest.raises(ValueError, match=r"Unknown loss aggregation mode 'mean'.*token_mean"):
        aggregate_loss(LOSS, MASK, "mean")
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        aggregate_loss(LOSS, MASK[:, :2], "token_mean")
    with pytest.raises(ValueError, match="token_sum_norm"):
        aggregate_loss(LOSS, MASK, "seq_mean_token_sum", token_sum_norm=0)
