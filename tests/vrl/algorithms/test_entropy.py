import math

import pytest
import torch

from vrl.algorithms.entropy import entropy_from_logits, entropy_from_logprobs


def test_golden_values():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [math.log(2), 0.0, -1e9, -1e9]]])
    ent = entropy_from_logits(logits)
    assert ent.shape == (1, 2)
    assert ent[0, 0].item() == pytest.approx(math.log(4))  # uniform over 4
    # p = [2/3, 1/3]: H = -(2/3 log 2/3 + 1/3 log 1/3)
    assert ent[0, 1].item() == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)), abs=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_chunking_changes_nothing_values_and_gradients(chunk_size):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(2, 7, 11, generator=gen, dtype=torch.float64)
    a = base.clone().requires_grad_(True)
    b = base.clone().requires_grad_(True)
    ea = entropy_from_logits(a, chunk_size=chunk_size)
    p = torch.softmax(b, -1)
    eb = -(p * torch.log_softmax(b, -1)).sum(-1)
    torch.testing.assert_close(ea, eb.float())
    weights = torch.randn(2, 7, generator=gen, dtype=torch.float64)
    (ea.double() * weights).sum().backward()
    (eb * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)


def test_bf16_logits_are_upcast():
    logits = torch.randn(3, 5, 8).to(torch.bfloat16)
    ent = entropy_from_logits(logits, chunk_size=4)
    assert ent.dtype == torch.float32
    torch.testing.assert_close(ent, entropy_from_logits(logits.float()))


def test_from_logprobs_matches_and_handles_zero_probability():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 6, generator=gen)
    torch.testing.assert_close(
        entropy_from_logprobs(torch.log_softmax(logits, -1)), entropy_from_logits(logits)
    )
    lp = torch.tensor([[math.log(0.5), math.log(0.5), -math.inf]], requires_grad=True)
    ent = entropy_from_logprobs(lp)
    assert ent.item() == pytest.approx(math.log(2))
    ent.sum().backward()
    assert torch.isfinite(lp.grad).all()


def test_invalid_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        entropy_from_logits(torch.zeros(1, 2), chunk_size=0)
