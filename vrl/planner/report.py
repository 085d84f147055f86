"""The plan as a per-GPU table (``stage=plan``) and as one JSON object (``format=json``)."""

from __future__ import annotations

import json
from typing import Any

from vrl.planner.plan import GIB, MemoryPlan, Suggestion


def _gib(n: int) -> str:
    return f"{n / GIB:8.2f}"


def _sum(detail: dict[str, int], prefix: str) -> int:
    return sum(v for k, v in detail.items() if k.startswith(prefix))


def format_table(plan: MemoryPlan, model: str, numel: int, suggestion: Suggestion | None) -> str:
    """A per-GPU table: one row per component, the two phases, the verdict, a suggestion if any."""
    lay, seq, d = plan.layout, plan.micro_batch, plan.detail
    parallel = f"DP={lay.dp}"
    if lay.engine == "megatron":
        parallel += f" TP={lay.tp} PP={lay.pp} (stage {plan.stage} planned: the most loaded)"
    if lay.sp > 1:
        parallel += f" SP={lay.sp}"
    saved = sum(v for k, v in d.items() if k.startswith("activations.") and "peak_transient" not in k)
    saved -= _sum(d, "activations.fsdp.") + _sum(d, "activations.megatron.")
    working = _sum(d, "activations.fsdp.") + _sum(d, "activations.megatron.")
    transient = d.get("activations.peak_transient", 0)
    if lay.engine == "fsdp" and lay.world == 1 and lay.param_dtype == "float32":
        param_note = "float32, unsharded"
    elif lay.engine == "fsdp":
        param_note = f"float32 masters, 1/{lay.world} shard each"
    else:
        param_note = "float32, this stage's TP shard"
    if d.get("params.reference"):
        param_note += f" (+ reference policy {d['params.reference'] / GIB:.2f})"
    rollout_note = " ".join(
        f"{k.split('.', 1)[1]} {v / GIB:.2f}" for k, v in d.items() if k.startswith("rollout.")
    )
    rows = [
        ("parameters", plan.params, param_note),
        ("gradients", plan.grads, "float32, at their peak (freed after the optimizer step)"),
        ("optimizer state", plan.optimizer, "AdamW moments (+ fp32 main weights where separate)"),
        (
            "activations",
            plan.activations,
            f"saved {saved / GIB:.2f}, engine copies {working / GIB:.2f}, peak transients {transient / GIB:.2f}",
        ),
        ("rollout (awake)", plan.rollout, rollout_note),
        ("rollout (asleep)", plan.rollout_asleep, "during the update"),
        ("reserved", plan.reserved, "plan.reserved_gb: CUDA contexts, NCCL, fragmentation"),
        ("phase: generate", plan.generate_phase, "parameters + optimizer + rollout awake + reserved"),
        (
            "phase: update",
            plan.update_phase,
            "parameters + gradients + optimizer + activations + rollout asleep + reserved",
        ),
    ]
    lines = [
        f"memory plan for {model} ({numel / 1e9:.2f} B parameters): engine={lay.engine}, {lay.world} GPU(s), "
        f"{parallel}, {lay.param_dtype}, recompute={lay.recompute}",
        f"largest micro-batch per GPU: {seq.rows} row(s) × {seq.length} tokens (prompt {seq.prompt_tokens} "
        f"with {seq.vision_patches} vision patches, response {seq.response_tokens}), "
        f"{seq.prompts} distinct prompt(s)",
        f"{'per GPU':<18}{'GiB':>8}",
    ]
    lines += [f"{name:<18}{_gib(value)}  {note}" for name, value, note in rows]
    lines.append(f"{'total (peak)':<18}{_gib(plan.total)}")
    lines.append(plan.verdict())
    if suggestion is not None:
        lines.append(
            f"nearest layout that fits ({suggestion.plan.total / GIB:.1f} GiB): {suggestion.command_line()}"
        )
    elif plan.fits is False:
        lines.append("no layout within reach of the planner's changes fits: more GPUs or a smaller budget")
    return "\n".join(lines)


def plan_json(plan: MemoryPlan, model: str, numel: int, suggestion: Suggestion | None) -> str:
    """One JSON object: bytes per device by component, ``total``, ``device_bytes``, ``fits``, and more."""
    out: dict[str, Any] = plan.to_json()
    out["model"] = model
    out["num_parameters"] = numel
    out["suggestion"] = (
        None
        if suggestion is None
        else {
            "changes": suggestion.changes,
            "total": suggestion.plan.total,
            "command": suggestion.command_line(),
        }
    )
    return json.dumps(out, sort_keys=True)
