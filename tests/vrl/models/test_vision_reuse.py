"""A prompt's vision embeddings are computed once per pass (no grad) or once per micro-batch (update),
counted at the vision tower itself, and reusing them changes no log-prob."""

from __future__ import annotations

import pytest
import torch
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import collate
from vrl.distributed import init_distributed
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.models.policy import ResponseLogProbs
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn


class TowerCounter:
    """Media items (grid rows) and calls that reach a vision tower's forward."""

    def __init__(self, visual: torch.nn.Module) -> None:
        self.items = 0
        self.calls = 0
        visual.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        self.items += int(grid.shape[0])
        self.calls += 1


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_vision_tower_runs_once_per_prompt_per_pass_and_per_update_micro_batch(tiny_qwen25, packing):
    # prompts: A video, B image, C video, D text; 3 trajectories each; micro-batches of 4 rows:
    # [A A A B] [B B C C] [C D D D]. Each row carries its prompt's media (no shared-prompt pass), so
    # without reuse a pass would encode 9 media items.
    trajs = make_trajectories(tiny_qwen25, per_prompt=3)
    cfg = EngineConfig(lr=1e-4, micro_batch_size=4, share_prompts=False, packing=packing)
    eng = FSDPEngine(cfg, tiny_qwen25, init_distributed(), total_steps=2)
    tower = TowerCounter(eng.hf_model.model.visual)
    counts = eng.policy.vision_reuse.counts

    logp = eng.compute_logprobs(trajs).logp
    # no-grad pass: each distinct item once (A, B in batch 1; C in batch 2; batch 3 reuses C)
    assert (tower.items, tower.calls) == (3, 3)
    assert (counts.encoded, counts.reused) == (3, 6)

    # the log-probs are those of the model encoding every row's media itself
    plain = ResponseLogProbs(eng.hf_model).eval()
    with torch.no_grad():
        mb = collate(trajs, eng.pad_id)
        want, _ = plain(mb)
    for i, t in enumerate(trajs):
        torch.testing.assert_close(logp[i], want[i, : t.response_len], atol=1e-5, rtol=0)
    assert tower.items == 3 + 9  # the plain pass encoded every row's media

    # update: with gradients, every micro-batch encodes its distinct items again: 2 + 2 + 1
    before = tower.items
    for t, lp in zip(trajs, logp):
        t.old_logp = lp
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, init_distributed())
    eng.train_step(trajs, loss_fn, need_entropy=False)
    assert tower.items - before == 5
    assert counts.encoded == 3 + 5

    # a second no-grad pass after the update starts from an empty cache (new weights)
    before = tower.items
    eng.compute_logprobs(trajs)
    assert tower.items - before == 3
