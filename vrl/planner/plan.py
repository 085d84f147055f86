"""The plan: bytes per device by component, the peak over the step's phases, a verdict against the
device, and the nearest layout that fits when this one does not.

Phases of one RL step on a device: **generate** (the policy's parameters and optimizer state stay
resident, gradients are freed, the rollout engine is awake) and **update** (parameters, gradients,
optimizer state, the update's activations; the rollout engine asleep or not). ``total`` is the larger of
the two plus ``plan.reserved_gb``; with sleep mode off it is the sum of every component.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from vrl.planner.activations import Sequences, hf_activations, megatron_activations
from vrl.planner.layout import Layout
from vrl.planner.model_memory import fsdp_state, megatron_state
from vrl.planner.rollout import RolloutBytes, rollout_bytes
from vrl.planner.shapes import ModelShapes
from vrl.planner.workload import Workload

GIB = 2**30


@dataclass
class MemoryPlan:
    layout: Layout
    micro_batch: Sequences
    params: int
    grads: int
    optimizer: int
    activations: int
    """The update's working memory at its peak: saved activations, logits, the engine's gathered copies."""
    rollout: int
    """The rollout engine while awake."""
    rollout_asleep: int
    reserved: int
    device_bytes: int | None
    stage: int = 0
    """Megatron: the pipeline stage planned (the most loaded); 0 otherwise."""
    detail: dict[str, int] = field(default_factory=dict)
    problem: str = ""

    @property
    def generate_phase(self) -> int:
        return self.params + self.optimizer + self.rollout + self.reserved

    @property
    def update_phase(self) -> int:
        return (
            self.params + self.grads + self.optimizer + self.activations + self.rollout_asleep + self.reserved
        )

    @property
    def total(self) -> int:
        return max(self.generate_phase, self.update_phase)

    @property
    def fits(self) -> bool | None:
        if self.device_bytes is None:
            return None
        return not self.problem and self.total <= self.device_bytes

    def verdict(self) -> str:
        """One line: the peak against the device and whether it fits."""
        head = f"memory plan: {self.total / GIB:.1f} GiB per GPU at peak"
        if self.device_bytes is None:
            return head + " (no GPU size given: set plan.gpu_memory_gb or the profile's gpu_memory_gb)"
        of = f"{head} of {self.device_bytes / GIB:.1f} GiB"
        if self.problem:
            return f"{of}: does not fit: {self.problem}"
        if self.fits:
            return f"{of}: fits ({(self.device_bytes - self.total) / GIB:.1f} GiB spare)"
        return f"{of}: does not fit ({(self.total - self.device_bytes) / GIB:.1f} GiB over)"

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "grads": self.grads,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "rollout": self.rollout,
            "total": self.total,
            "device_bytes": self.device_bytes,
            "fits": self.fits,
            "rollout_asleep": self.rollout_asleep,
            "reserved": self.reserved,
            "phases": {"generate": self.generate_phase, "update": self.update_phase},
            "layout": {
                "engine": self.layout.engine,
                "world": self.layout.world,
                "dp": self.layout.dp,
                "tp": self.layout.tp,
                "pp": self.layout.pp,
                "sp": self.layout.sp,
                "param_dtype": self.layout.param_dtype,
                "recompute": self.layout.recompute,
                "micro_batch_rows": self.micro_batch.rows,
                "prompt_tokens": self.micro_batch.prompt_tokens,
                "response_tokens": self.micro_batch.response_tokens,
                "vision_patches": self.micro_batch.vision_patches,
                "pipeline_stage": self.stage,
            },
            "detail": dict(self.detail),
            "verdict": self.verdict(),
        }


def plan_memory(
    shapes: ModelShapes,
    layout: Layout,
    workload: Workload,
    rollout: Any,
    device_bytes: int | None,
    reserved: int = 0,
) -> MemoryPlan:
    """The plan of the most loaded device (Megatron: the pipeline stage with the largest total)."""
    seq = workload.micro_batch(layout)
    roll = rollout_bytes(shapes, rollout, workload.length, device_bytes)
    if layout.engine == "fsdp":
        candidates = [_fsdp_plan(shapes, layout, workload, seq, roll, device_bytes, reserved)]
    else:
        candidates = [
            _megatron_plan(shapes, layout, workload, seq, roll, device_bytes, reserved, r)
            for r in range(layout.pp)
        ]
    return max(candidates, key=lambda p: p.total)


def _plan(layout, seq, state, acts: dict[str, int], roll: RolloutBytes, device_bytes, reserved, stage=0):
    detail = {k if k.startswith("params.") else f"activations.{k}": v for k, v in state.detail.items()}
    detail.update({f"activations.{k}": v for k, v in acts.items()})
    detail.update(roll.detail)
    return MemoryPlan(
        layout=layout,
        micro_batch=seq,
        params=state.params,
        grads=state.grads,
        optimizer=state.optimizer,
        activations=sum(acts.values()) + state.working,
        rollout=roll.awake,
        rollout_asleep=roll.asleep,
        reserved=reserved,
        device_bytes=device_bytes,
        stage=stage,
        detail=detail,
        problem=roll.problem,
    )


def _fsdp_plan(shapes, layout, workload, seq, roll, device_bytes, reserved) -> MemoryPlan:
    state = fsdp_state(shapes, layout, 0, workload.reference)
    acts = hf_activations(shapes, layout, seq, entropy=workload.entropy)
    return _plan(layout, seq, state, acts, roll, device_bytes, reserved)


def _megatron_plan(shapes, layout, workload, seq, roll, device_bytes, reserved, stage) -> MemoryPlan:
    state = megatron_state(shapes, layout, stage, workload.reference)
    acts = megatron_activations(shapes, layout, seq, stage, entropy=workload.entropy)
    return _plan(layout, seq, state, acts, roll, device_bytes, reserved, stage)


# ---- the nearest layout that fits ---------------------------------------------------------------------
@dataclass(frozen=True)
class Knob:
    """One change a user can make, its config key, and what it costs (step time, GPUs)."""

    key: str
    values: tuple[Any, ...]
    """Values to try, the current one first."""
    cost: tuple[float, ...]
    """Cost of each value (0 for the current one)."""


@dataclass
class Suggestion:
    changes: dict[str, Any]
    """Config key → new value."""
    plan: MemoryPlan

    def command_line(self) -> str:
        return " ".join(f"{k}={_fmt(v)}" for k, v in self.changes.items())


def _fmt(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def knobs(
    layout: Layout, rollout: Any, shapes: ModelShapes, supported: set[str], nodes: int = 1
) -> list[Knob]:
    """The changes to search and their costs. ``supported``: config keys that exist today (the keys of
    the long-video and Megatron-at-scale issues join the search the day their config field exists)."""
    out: list[Knob] = []
    if layout.param_dtype == "float32":
        out.append(Knob("engine.param_dtype", ("float32", "bfloat16"), (0, 1)))
    no_recompute = layout.engine == "megatron" and shapes.vision.deepstack  # the engine refuses it
    if layout.recompute == "none" and not no_recompute:
        if "engine.recompute" in supported and layout.engine == "megatron":  # fsdp: gradient_checkpointing
            out.append(Knob("engine.recompute", ("none", "selective", "full"), (0, 1.5, 2)))
        else:
            out.append(Knob("engine.gradient_checkpointing", (False, True), (0, 2)))
    mbs = [layout.micro_batch_size]
    while mbs[-1] > 1 and len(mbs) < 5:
        mbs.append(max(1, mbs[-1] // 2))
    if len(mbs) > 1:
        out.append(Knob("engine.micro_batch_size", tuple(mbs), tuple(float(i) for i in range(len(mbs)))))
    if rollout.name == "vllm" and not rollout.enable_sleep_mode:
        out.append(Knob("rollout.enable_sleep_mode", (False, True), (0, 1)))
    if rollout.name == "vllm" and "rollout.tensor_parallel_size" in supported:  # the rollout issue's key
        current = int(getattr(rollout, "tensor_parallel_size", 1) or 1)
        rtps = [
            d for d in (1, 2, 4, 8) if d >= current and layout.world % d == 0 and shapes.text.heads % d == 0
        ]
        if len(rtps) > 1:
            out.append(
                Knob("rollout.tensor_parallel_size", tuple(rtps), tuple(1.0 * i for i in range(len(rtps))))
            )
    if rollout.name == "vllm":
        utils = [rollout.gpu_memory_utilization] + [
            u for u in (0.4, 0.3, 0.2) if u < rollout.gpu_memory_utilization - 1e-9
        ]
        out.append(
            Knob("rollout.gpu_memory_utilization", tuple(utils), tuple(float(i) for i in range(len(utils))))
        )
    t = shapes.text
    if layout.engine == "megatron":
        tps = [d for d in (1, 2, 4, 8) if d >= layout.tp and layout.world % (d * layout.pp) == 0]
        tps = [d for d in tps if not (t.heads % d or t.kv_heads % d or t.vocab % d or t.intermediate % d)]
        if len(tps) > 1:
            out.append(
                Knob("engine.tensor_parallel_size", tuple(tps), tuple(2.0 * i for i in range(len(tps))))
            )
        pps = [d for d in (1, 2, 4, 8) if d >= layout.pp and t.layers % d == 0]
        if len(pps) > 1:
            out.append(
                Knob("engine.pipeline_parallel_size", tuple(pps), tuple(3.0 * i for i in range(len(pps))))
            )
        if "engine.sequence_parallel" in supported and not layout.megatron_sequence_parallel:
            out.append(Knob("engine.sequence_parallel", (False, True), (0, 0.5)))
        if "engine.distributed_optimizer" in supported and not layout.distributed_optimizer:
            out.append(Knob("engine.distributed_optimizer", (False, True), (0, 0.5)))
    if "engine.sequence_parallel_size" in supported:
        sps = [d for d in (1, 2, 4, 8) if d >= layout.sp and layout.world % d == 0 and t.heads % d == 0]
        if len(sps) > 1:
            out.append(
                Knob("engine.sequence_parallel_size", tuple(sps), tuple(2.0 * i for i in range(len(sps))))
            )
    out.append(Knob("nodes", (nodes, 2 * nodes, 4 * nodes), (0, 5, 10)))  # more GPUs: the last resort
    return out


def _apply(layout: Layout, key: str, value: Any, tasks_per_node: int) -> tuple[Layout, dict[str, Any]]:
    """The layout and rollout-field overrides a config change means to the planner."""
    field_of = {
        "engine.param_dtype": "param_dtype",
        "engine.micro_batch_size": "micro_batch_size",
        "engine.tensor_parallel_size": "tp",
        "engine.pipeline_parallel_size": "pp",
        "engine.sequence_parallel_size": "sp",
        "engine.sequence_parallel": "megatron_sequence_parallel",
    }
    if key in field_of:
        return layout.with_changes(**{field_of[key]: value}), {}
    if key == "engine.gradient_checkpointing":
        return layout.with_changes(recompute="full" if value else "none"), {}
    if key == "engine.recompute":
        return layout.with_changes(recompute=value), {}
    if key == "engine.distributed_optimizer":
        bf16 = bool(value) and layout.param_dtype == "bfloat16"
        return layout.with_changes(distributed_optimizer=value, megatron_bf16_params=bf16), {}
    if key == "nodes":
        return layout.with_changes(world=value * tasks_per_node), {}
    if key.startswith("rollout."):
        return layout, {key.split(".", 1)[1]: value}
    raise AssertionError(f"no planner mapping for {key}")


class _RolloutView:
    """``rollout.*`` with some fields replaced (the config object itself is left alone)."""

    def __init__(self, base: Any, overrides: dict[str, Any]) -> None:
        self._base, self._overrides = base, overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._base, name)


def suggest(
    shapes: ModelShapes,
    layout: Layout,
    workload: Workload,
    rollout: Any,
    device_bytes: int,
    reserved: int,
    supported: set[str],
    nodes: int = 1,
    prompts_per_step: int = 0,
) -> Suggestion | None:
    """The cheapest combination of :func:`knobs` whose plan fits ``device_bytes`` (ties: less memory).

    Layouts the config would refuse are skipped: model parallelism not dividing the world, a
    data-parallel size not dividing ``prompts_per_step`` (trainer.rollout_batch_size; 0: not checked)."""
    tasks_per_node = max(1, layout.world // max(1, nodes))
    ks = knobs(layout, rollout, shapes, supported, nodes)
    if not _rollout_can_fit(shapes, ks, rollout, workload, device_bytes):
        return None
    combos = sorted(
        itertools.product(*(range(len(k.values)) for k in ks)),
        key=lambda c: sum(k.cost[i] for k, i in zip(ks, c)),
    )
    best: tuple[float, int, Suggestion] | None = None
    for choice in combos:  # cheapest first: stop after the first fitting cost level
        cost = sum(k.cost[i] for k, i in zip(ks, choice))
        if best is not None and cost > best[0]:
            break
        lay, roll_over, changes = layout, {}, {}
        for k, i in zip(ks, choice):
            if i:
                lay, extra = _apply(lay, k.key, k.values[i], tasks_per_node)
                roll_over.update(extra)
                changes[k.key] = k.values[i]
        model_parallel = lay.tp * lay.pp * lay.sp
        if lay.world % model_parallel or (
            prompts_per_step and prompts_per_step % (lay.world // model_parallel)
        ):
            continue
        plan = plan_memory(shapes, lay, workload, _RolloutView(rollout, roll_over), device_bytes, reserved)
        if plan.fits and (best is None or (cost, plan.total) < best[:2]):
            best = (cost, plan.total, Suggestion(changes, plan))
    return best[2] if best else None


def _rollout_can_fit(
    shapes: ModelShapes, ks: list[Knob], rollout: Any, workload: Workload, device_bytes: int
) -> bool:
    """Whether any value of the rollout knobs lets the rollout engine start at all (else nothing fits)."""
    options = [k for k in ks if k.key.startswith("rollout.")]
    for values in itertools.product(*(k.values for k in options)):
        view = _RolloutView(rollout, {k.key.split(".", 1)[1]: v for k, v in zip(options, values)})
        if not rollout_bytes(shapes, view, workload.length, device_bytes).problem:
            return True
    return False
