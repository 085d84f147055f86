"""Packed micro-batches: the row layout, positions and masks; packed and padded engines give the same
log-probs, entropies, gradients and weights after one update, on a mixed batch (video, image, text,
uneven lengths), for both model families, with and without shared prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from vrl_fixtures import make_trajectories

from vrl.algorithms.config import AlgorithmConfig
from vrl.batch import collate
from vrl.distributed import init_distributed
from vrl.engines.base import LogProbs
from vrl.engines.config import EngineConfig
from vrl.engines.fsdp import FSDPEngine
from vrl.engines.packing import (
    VARLEN_SDPA,
    computed_tokens,
    cu_seqlens,
    pack,
    position_ids,
    real_tokens,
    shared_prefix_mask,
    unpack,
)
from vrl.models.loading import load_hf_model
from vrl.models.policy import ResponseLogProbs
from vrl.models.tiny import resolve_model
from vrl.trainer.mixing import MixConfig
from vrl.trainer.update import make_loss_fn

FAMILIES = ["tiny-qwen2.5-vl", "tiny-qwen3-vl"]


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    return {name: resolve_model(name) for name in FAMILIES}


def test_cu_seqlens_and_unpack_round_trip(models):
    assert cu_seqlens([3, 1, 4]).tolist() == [0, 3, 4, 8] and cu_seqlens([2]).dtype == torch.int32
    trajs = make_trajectories(models["tiny-qwen2.5-vl"], per_prompt=2)
    mb = pack(trajs, pad_id=0)
    layout = mb.packed
    assert mb.input_ids.shape == (1, layout.num_tokens) and layout.cu_seqlens.numel() == len(trajs) + 1
    for t, seq in zip(trajs, unpack(mb.input_ids, layout)):
        assert torch.equal(seq, torch.cat([t.prompt.input_ids, t.response_ids]))
    # each response token is scored by the position before it, in its own sequence
    for b, t in enumerate(trajs):
        r = t.response_len
        assert torch.equal(mb.input_ids[0, layout.logit_index[b, :r] + 1], t.response_ids)
        assert torch.equal(layout.targets[b, :r], t.response_ids)
    padded = collate(trajs, pad_id=0)
    for key in ("token_mask", "advantages", "prompt_lens", "response_lens"):
        assert torch.equal(getattr(mb, key), getattr(padded, key)), key
    assert real_tokens(mb) == computed_tokens(mb) == real_tokens(padded) < computed_tokens(padded)


def test_shared_layout_runs_each_prompt_once(models):
    trajs = make_trajectories(models["tiny-qwen3-vl"], per_prompt=3)
    mb = pack(trajs, pad_id=0, share_prompts=True)
    layout = mb.packed
    assert layout.shared and layout.cu_seqlens.numel() == 4 + 1  # one sequence per distinct prompt
    prompts = [trajs[i].prompt for i in range(0, 12, 3)]
    assert layout.num_tokens == sum(p.input_ids.numel() for p in prompts) + sum(t.response_len for t in trajs)
    assert mb.vision["pixel_values_videos"].shape[0] == sum(
        p.vision["pixel_values_videos"].shape[0] for p in prompts if "pixel_values_videos" in p.vision
    )
    mask = shared_prefix_mask(layout, "sdpa", torch.float32)[0, 0]
    owner = layout.response_of
    a, b = (owner == 0).nonzero().flatten(), (owner == 1).nonzero().flatten()  # two responses, one prompt
    assert not mask[b][:, a].any() and not mask[a][:, b].any()  # responses never see each other
    plen = int(layout.prompt_lens[0])
    assert mask[b][:, :plen].all() and mask[a][:, :plen].all()  # both see the whole prompt
    assert not mask[:plen, plen:].any()  # the prompt sees no response
    eager = shared_prefix_mask(layout, "eager", torch.float32)[0, 0]
    assert torch.equal(eager == 0, mask)
    with pytest.raises(ValueError, match="share_prompts=false"):
        shared_prefix_mask(layout, "flash_attention_2", torch.float32)


def test_text_only_positions_restart_per_sequence(models):
    text = [t for t in make_trajectories(models["tiny-qwen2.5-vl"], per_prompt=2) if not t.prompt.vision]
    assert len(text) == 2
    mb = pack(text, pad_id=0)
    model = load_hf_model(models["tiny-qwen2.5-vl"])
    pos = position_ids(mb, model.model.get_rope_index)
    assert pos.shape == (4, 1, mb.packed.num_tokens)
    want = torch.cat([torch.arange(n) for n in (mb.packed.cu_seqlens.diff()).tolist()])
    for row in range(4):
        assert torch.equal(pos[row, 0], want)


def _pass(policy: ResponseLogProbs, mb) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    policy.zero_grad(set_to_none=True)
    logp, ent = policy(mb, with_entropy=True)
    (logp.sum() + 0.1 * ent.sum()).backward()
    grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
    return logp.detach(), ent.detach(), grads


def test_packed_shared_prompts_keep_sharing_under_gradient_checkpointing(models):
    """The packed shared-prompt pass holds no key/value cache, so checkpointed layers keep it (the padded
    one falls back to full sequences): same log-probs and gradients as the padded full pass."""
    trajs = make_trajectories(models["tiny-qwen2.5-vl"], per_prompt=2)
    model = load_hf_model(models["tiny-qwen2.5-vl"])
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy = ResponseLogProbs(model).train()
    lp_a, ent_a, g_a = _pass(policy, collate(trajs, 0))
    lp_b, ent_b, g_b = _pass(policy, pack(trajs, 0, share_prompts=True))
    torch.testing.assert_close(lp_b, lp_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent_b, ent_a, atol=1e-5, rtol=0)
    assert set(g_a) == set(g_b) and any(".visual." in n for n in g_a)
    for n in g_a:
        torch.testing.assert_close(g_b[n], g_a[n], atol=5e-5, rtol=1e-3)


@pytest.mark.parametrize("name", FAMILIES)
def test_without_the_text_row_sequences_leak_into_each_other(models, name):
    """The control that makes the parity meaningful: the same packed row with only the 3 M-RoPE rows
    (no text row 0) lets sequences attend across their boundaries, and the log-probs move."""
    trajs = make_trajectories(models[name], per_prompt=1)
    policy = ResponseLogProbs(load_hf_model(models[name])).eval()
    mb = pack(trajs, 0)
    inner = policy.model.model
    with torch.no_grad():
        good = policy(mb)[0]
        pos = position_ids(mb, inner.get_rope_index)
        hidden = inner(**mb.model_inputs(), position_ids=pos[1:], use_cache=False).last_hidden_state
        logits = policy.model.lm_head(hidden[0][mb.packed.logit_index]).float()
        leaked = (
            torch.log_softmax(logits, -1).gather(-1, mb.packed.targets[..., None])[..., 0] * mb.token_mask
        )
    assert (leaked - good).abs().max() > 1e-2


def _engine_update(model: Path, packing: bool, share: bool) -> tuple[LogProbs, dict, dict]:
    """Log-probs and entropies, the applied gradients, and the weights after one on-policy update (lr 1e-4,
    2 micro-batches)."""
    torch.manual_seed(0)
    ctx = init_distributed()
    cfg = EngineConfig(lr=1e-4, micro_batch_size=4, packing=packing, share_prompts=share)
    eng = FSDPEngine(cfg, model, ctx, total_steps=10)
    # Adam's first step moves an entry by lr·g/(|g|+eps): the default eps (1e-8) would amplify the float
    # rounding of near-zero gradient entries lr/eps = 1e4 times; the gradients are compared directly too
    eng.optimizer.param_groups[0]["eps"] = 1e-4
    trajs = make_trajectories(model, per_prompt=2)
    for i, t in enumerate(trajs):
        t.advantage = float(i % 3) - 1.0
    logp = eng.compute_logprobs(trajs, with_entropy=True)
    grads: dict[str, torch.Tensor] = {}
    step = eng.optimizer.step

    def capture(*args, **kwargs):
        grads.update({n: p.grad.clone() for n, p in eng.policy.named_parameters() if p.grad is not None})
        return step(*args, **kwargs)

    eng.optimizer.step = capture
    loss_fn = make_loss_fn(AlgorithmConfig(), MixConfig(), trajs, ctx, on_policy=True)
    eng.train_step(trajs, loss_fn, need_entropy=True)
    return logp, grads, {k: v.clone() for k, v in eng.rollout_weights()}


@pytest.mark.parametrize("share", [False, True], ids=["whole", "shared"])
@pytest.mark.parametrize("name", FAMILIES)
def test_packed_update_equals_padded(models, name, share):
    before = {k: v.clone() for k, v in load_hf_model(models[name]).state_dict().items()}
    lp_a, g_a, w_a = _engine_update(models[name], packing=False, share=share)
    lp_b, g_b, w_b = _engine_update(models[name], packing=True, share=share)
    for a, b in zip(lp_a.logp + lp_a.entropy, lp_b.logp + lp_b.entropy, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    assert set(g_a) == set(g_b) and g_a
    for n in g_a:
        torch.testing.assert_close(g_b[n], g_a[n], atol=1e-6, rtol=1e-4)
    moved = max((w_a[k] - before[k]).abs().max().item() for k in before if k in w_a)
    assert moved > 5e-5  # the update moved weights well beyond the tolerance below
    for k in w_a:
        torch.testing.assert_close(w_b[k], w_a[k], atol=1e-5, rtol=0)


def test_the_engine_packs_with_per_sequence_sdpa(models):
    """Packed under sdpa, the engine's language model runs sdpa on each packed sequence (no work across
    sequences, no O(T²) mask); the vision tower keeps sdpa; padded engines keep plain sdpa."""
    ctx = init_distributed()
    packed = FSDPEngine(EngineConfig(packing=True), models["tiny-qwen3-vl"], ctx, total_steps=1)
    padded = FSDPEngine(EngineConfig(), models["tiny-qwen3-vl"], ctx, total_steps=1)
    assert packed.hf_model.config.get_text_config()._attn_implementation == VARLEN_SDPA
    assert packed.hf_model.config.vision_config._attn_implementation == "sdpa"
    assert padded.hf_model.config.get_text_config()._attn_implementation == "sdpa"
    trajs = make_trajectories(models["tiny-qwen3-vl"], per_prompt=2)
    for a, b in zip(padded.compute_logprobs(trajs).logp, packed.compute_logprobs(trajs).logp, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (flash-attention varlen)")
@pytest.mark.gpu
def test_flash_attention_varlen_packed_equals_padded(models):
    """GPU path: flash_attention_2 derives cu_seqlens from the text row and runs the varlen kernel."""
    pytest.importorskip("flash_attn", reason="flash_attention_2 needs the flash-attn package")
    for name in FAMILIES:
        trajs = make_trajectories(models[name], per_prompt=2)
        model = load_hf_model(models[name], dtype=torch.bfloat16, device=torch.device("cuda"))
        model.set_attn_implementation("flash_attention_2")
        policy = ResponseLogProbs(model).eval()
        with torch.no_grad():
            padded = policy(collate(trajs, 0).to(torch.device("cuda")))[0]
            packed = policy(pack(trajs, 0).to(torch.device("cuda")))[0]
        torch.testing.assert_close(packed.float(), padded.float(), atol=3e-2, rtol=0)
