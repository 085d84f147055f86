"""Log-probs and entropy from (one rank's) vocab-parallel logits equal torch's, values and gradients."""

from __future__ import annotations

import torch

from vrl.algorithms.entropy import entropy_from_logits
from vrl.engines.megatron.logprobs import vocab_parallel_logprobs


def test_one_rank_equals_log_softmax_and_entropy():
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 5, 50, generator=gen) * 4).requires_grad_()
    targets = torch.randint(0, 50, (3, 5), generator=gen)
    logp, ent = vocab_parallel_logprobs(logits, targets, 0, None, with_entropy=True)
    ref_logits = logits.detach().clone().requires_grad_()
    ref = torch.log_softmax(ref_logits, -1).gather(-1, targets[..., None]).squeeze(-1)
    ref_ent = entropy_from_logits(ref_logits)
    torch.testing.assert_close(logp, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(ent, ref_ent, rtol=0, atol=1e-5)
    weights = torch.randn(3, 5, generator=gen)
    ((logp + 0.3 * ent) * weights).sum().backward()
    ((ref + 0.3 * ref_ent) * weights).sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, rtol=0, atol=1e-5)


def test_targets_outside_the_slice_contribute_nothing_locally():
    """A rank holding vocabulary [10, 20) gives a target outside it a zero target logit (other ranks add it)."""
    logits = torch.zeros(1, 10)
    logp, _ = vocab_parallel_logprobs(logits, torch.tensor([3]), 10, None)
    assert torch.allclose(logp, -torch.log(torch.tensor([10.0])))
