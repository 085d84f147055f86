"""The plan's arithmetic, verdict and suggestions, and the Qwen2.5-VL-7B/32B/72B table on 8 × 80 GB.

The table rows are printed (``pytest -s``): the README's planner table is this output. Setting: the
train stage's ``easyvideor1`` preset (32 frames at Qwen-VL's video budget, responses of 512 tokens, groups
of 8, 8 prompts per step, micro-batches of 8), bfloat16, colocated vLLM at gpu_memory_utilization 0.5
with sleep mode, 3 GiB reserved per GPU.
"""

from __future__ import annotations

import pytest

from vrl.config import get_preset, parse
from vrl.planner.layout import Layout, layout_from_config
from vrl.planner.plan import GIB, _RolloutView, plan_memory, suggest
from vrl.planner.rollout import rollout_bytes
from vrl.planner.shapes import read_shapes
from vrl.planner.stage import make_plan, plan_dict, supported_keys
from vrl.planner.workload import Workload, video_patches, workload_from_config
from vrl.rollout.config import RolloutConfig

REQUIRED = ("params", "grads", "optimizer", "activations", "rollout", "total", "device_bytes", "fits")


def config(model, *extra: str):
    base = ["tasks_per_node=8", "engine.param_dtype=bfloat16", "rollout=vllm", "plan.gpu_memory_gb=80"]
    cfg, _ = parse(get_preset("plan", "easyvideor1"), [f"model={model}", *base, *extra])
    return cfg


def test_micro_batch_rows_and_distinct_prompts():
    w = Workload(100, 50, 0, group_size=8, trajectories_per_update=64)
    seq = w.micro_batch(Layout("fsdp", 8, 8))
    assert (seq.rows, seq.prompts, seq.length) == (8, 1, 150)
    assert w.micro_batch(Layout("fsdp", 8, 3)).prompts == 2  # 3 rows of groups of 8 can span two groups
    assert w.micro_batch(Layout("fsdp", 16, 8)).rows == 4  # only 64 / 16 trajectories per rank
    budget = Layout("fsdp", 1, 8, max_tokens_per_micro_batch=450)
    assert w.micro_batch(budget.with_changes(share_prompts=False)).rows == 3  # 3 × 150 tokens
    assert w.micro_batch(budget).rows == 7  # the shared prompt once: 100 + 7 × 50 (the engine's cost)
    assert (
        w.micro_batch(budget.with_changes(recompute="full")).rows == 3
    )  # padded + checkpointing: no sharing
    assert w.micro_batch(budget.with_changes(recompute="full", packing=True)).rows == 7


def test_video_budget_sets_the_prompt(qwen_dirs):
    cfg = config(qwen_dirs["Qwen2.5-VL-7B"])
    shapes = read_shapes(cfg.model)
    patches = video_patches(cfg.data.video, shapes.vision)
    assert patches == 16 * (100352 // 14**2)  # 32 frames → 16 temporal patches, total_pixels / 32 per frame
    w = workload_from_config(cfg, shapes)
    assert w.prompt_tokens == cfg.plan.text_tokens + patches // 4 and w.vision_patches == patches
    short = workload_from_config(config(qwen_dirs["Qwen2.5-VL-7B"], "data.max_prompt_length=1024"), shapes)
    assert short.prompt_tokens == 1024 and short.vision_patches == 4 * (1024 - cfg.plan.text_tokens)
    given = workload_from_config(config(qwen_dirs["Qwen2.5-VL-7B"], "plan.prompt_tokens=5000"), shapes)
    assert given.prompt_tokens == 5000


def test_json_keys_phases_and_verdict(qwen_dirs):
    out = plan_dict(config(qwen_dirs["Qwen2.5-VL-7B"]))
    assert all(k in out for k in REQUIRED)
    assert out["device_bytes"] == 80 * GIB
    assert out["total"] == max(out["phases"].values())
    assert out["fits"] is (out["total"] <= out["device_bytes"])
    awake = out["params"] + out["optimizer"] + out["rollout"] + out["reserved"]
    assert out["phases"]["generate"] == awake
    no_sleep = plan_dict(config(qwen_dirs["Qwen2.5-VL-7B"], "rollout.enable_sleep_mode=false"))
    parts = sum(no_sleep[k] for k in ("params", "grads", "optimizer", "activations", "rollout", "reserved"))
    assert no_sleep["total"] == parts  # without sleep mode every component is resident at once
    unknown = plan_dict(config(qwen_dirs["Qwen2.5-VL-7B"], "plan.gpu_memory_gb=0"))
    assert unknown["device_bytes"] is None and unknown["fits"] is None


def test_more_memory_saving_never_costs_memory(qwen_dirs):
    base = plan_dict(config(qwen_dirs["Qwen2.5-VL-7B"]))
    for extra in (
        "engine.gradient_checkpointing=true",
        "engine.micro_batch_size=2",
        "nodes=2 trainer.rollout_batch_size=16",
    ):
        assert plan_dict(config(qwen_dirs["Qwen2.5-VL-7B"], *extra.split()))["total"] < base["total"], extra
    tp = plan_dict(config(qwen_dirs["Qwen2.5-VL-7B"], "engine=megatron", "engine.tensor_parallel_size=2"))
    tp1 = plan_dict(config(qwen_dirs["Qwen2.5-VL-7B"], "engine=megatron"))
    assert tp["params"] < tp1["params"] and tp["activations"] < tp1["activations"]


def test_suggestion_fits_and_is_reported(qwen_dirs):
    plan, suggestion, _ = make_plan(config(qwen_dirs["Qwen2.5-VL-7B"]))
    assert plan.fits is False and suggestion is not None
    assert suggestion.plan.fits and suggestion.plan.total <= 80 * GIB
    assert suggestion.changes == {"engine.micro_batch_size": 4}  # the cheapest change that fits


def test_a_vllm_share_smaller_than_its_weights_is_named(qwen_dirs):
    shapes = read_shapes(qwen_dirs["Qwen2.5-VL-72B"])
    roll = rollout_bytes(shapes, RolloutConfig(name="vllm"), 3000, 80 * GIB)
    assert "weights take 136.7 GiB" in roll.problem
    plan = plan_memory(
        shapes,
        Layout("fsdp", 64, 1, "bfloat16"),
        Workload(2000, 1000, 0, 8, 64),
        RolloutConfig(name="vllm"),
        80 * GIB,
    )
    assert plan.fits is False and "does not fit: rollout.gpu_memory_utilization" in plan.verdict()


def test_keys_of_later_issues_plug_in(qwen_dirs):
    """Fields the engines gain later (sequence parallelism, token budget, distributed optimizer, rollout
    TP) are read by name and searched only when the config has them."""

    class Engine:
        name, micro_batch_size, param_dtype, gradient_checkpointing, share_prompts = (
            "fsdp",
            8,
            "bfloat16",
            False,
            True,
        )
        tensor_parallel_size = pipeline_parallel_size = num_microbatches = 1
        sequence_parallel_size, max_tokens_per_micro_batch, packing = 4, 9000, True

    class Cfg:
        engine = Engine()

        def layout(self):
            return 1, 8

    layout = layout_from_config(Cfg())
    assert (layout.sp, layout.dp, layout.max_tokens_per_micro_batch, layout.packing) == (4, 2, 9000, True)
    cfg = config(qwen_dirs["Qwen2.5-VL-7B"])
    shapes, rollout = read_shapes(cfg.model), _RolloutView(cfg.rollout, {"tensor_parallel_size": 1})
    plain = suggest(
        shapes,
        layout_from_config(cfg),
        workload_from_config(cfg, shapes),
        rollout,
        80 * GIB,
        3 * GIB,
        {"engine.micro_batch_size"},
    )
    assert plain is not None and set(plain.changes) <= {"engine.micro_batch_size", "nodes"}
    with_sp = suggest(
        shapes,
        layout_from_config(cfg).with_changes(micro_batch_size=8),
        workload_from_config(cfg, shapes),
        rollout,
        60 * GIB,
        3 * GIB,
        {"engine.sequence_parallel_size", "rollout.tensor_parallel_size"},
        prompts_per_step=8,
    )
    assert with_sp is not None and with_sp.plan.fits


def _row(engine: str, name: str, cfg) -> str:
    plan, suggestion, _ = make_plan(cfg)
    chosen = suggestion.plan if suggestion else plan
    parts = " | ".join(
        f"{getattr(chosen, k) / GIB:.1f}" for k in ("params", "grads", "optimizer", "activations", "rollout")
    )
    change = suggestion.command_line() if suggestion else ("(fits as is)" if plan.fits else "none found")
    fits = "fits" if chosen.fits else f"does not fit: {chosen.problem or 'over'}"
    return (
        f"| {name} | {engine} | {plan.total / GIB:.1f} | {change} | {chosen.layout.world} | {parts} | "
        f"{chosen.total / GIB:.1f} | {fits} |"
    )


@pytest.mark.parametrize("engine", ["fsdp", "megatron"])
def test_qwen25_vl_table_on_8x80gb(qwen_dirs, engine):
    rows = []
    for name in ("Qwen2.5-VL-7B", "Qwen2.5-VL-32B", "Qwen2.5-VL-72B"):
        cfg = config(qwen_dirs[name], f"engine={engine}")
        rows.append(_row(engine, name, cfg))
        plan, suggestion, _ = make_plan(cfg)
        if name == "Qwen2.5-VL-7B":  # 7B fits on 8 GPUs once the planner's change is applied
            assert suggestion is not None and suggestion.plan.fits and suggestion.plan.layout.world == 8
        else:  # one GPU's vLLM share cannot hold 32B/72B bf16 weights: no layout of today fits
            assert plan.fits is False and "bfloat16 weights take" in plan.problem
    print("\nPLANNER TABLE\n" + "\n".join(rows))


def test_with_rollout_tensor_parallelism_32b_and_72b_fit(qwen_dirs):
    """Once rollout.tensor_parallel_size exists (the rollout issue), the planner finds layouts for 32B/72B."""
    rows = []
    for name in ("Qwen2.5-VL-32B", "Qwen2.5-VL-72B"):
        for engine in ("fsdp", "megatron"):
            cfg = config(qwen_dirs[name], f"engine={engine}")
            shapes = read_shapes(cfg.model)
            rollout = _RolloutView(cfg.rollout, {"tensor_parallel_size": 1})
            keys = supported_keys(cfg) | {"rollout.tensor_parallel_size"}
            found = suggest(
                shapes,
                layout_from_config(cfg),
                workload_from_config(cfg, shapes),
                rollout,
                80 * GIB,
                3 * GIB,
                keys,
                1,
                8,
            )
            assert found is not None and found.plan.fits
            rows.append(
                f"| {name} | {engine} | {found.command_line()} | {found.plan.layout.world} | {found.plan.total / GIB:.1f} |"
            )
    print("\nPLANNER TABLE (rollout TP)\n" + "\n".join(rows))
