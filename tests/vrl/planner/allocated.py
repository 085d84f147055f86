"""What an engine has allocated, counted from its tensors: the ground truth the planner's bytes must equal.

Each category counts distinct storages once (FSDP2's gradients are views into one buffer per unit; a
tied embedding is one tensor), with a DTensor counted by its local shard.
"""

from __future__ import annotations

import torch
from torch.distributed.tensor import DTensor


def _local(t: torch.Tensor) -> torch.Tensor:
    return t._local_tensor if isinstance(t, DTensor) else t


def storage_bytes(tensors) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        st = _local(t).untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def parameter_bytes(module: torch.nn.Module) -> int:
    return storage_bytes(module.parameters())


def grad_bytes(module: torch.nn.Module) -> int:
    """``.grad`` of each parameter, or megatron DDP's ``main_grad`` (views of its persistent fp32 buffer)."""
    grads = (getattr(p, "main_grad", None) if p.grad is None else p.grad for p in module.parameters())
    return storage_bytes(g for g in grads if g is not None)


def optimizer_bytes(optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """(bytes of the AdamW moments, number of 0-dim ``step`` counters left out)."""
    moments, steps = [], 0
    for state in optimizer.state.values():
        for key, value in state.items():
            if key == "step":
                assert value.dim() == 0, "AdamW step counters are 0-dim"
                steps += 1
            else:
                moments.append(value)
    return storage_bytes(moments), steps


def measure_step(engine, run_step) -> dict[str, int]:
    """Run one update through ``run_step()``; count gradients when the optimizer is about to step and
    optimizer state after it."""
    counts: dict[str, int] = {}
    original = engine.optimizer.step

    def step(*args, **kwargs):
        counts["grads"] = grad_bytes(engine.policy)
        return original(*args, **kwargs)

    engine.optimizer.step = step
    run_step()
    engine.optimizer.step = original
    counts["params"] = parameter_bytes(engine.policy)
    if getattr(engine, "reference", None) is not None:
        counts["params"] += parameter_bytes(engine.reference)
    counts["optimizer"], counts["step_counters"] = optimizer_bytes(engine.optimizer)
    check_engine_hook(engine, counts)
    return counts


def check_engine_hook(engine, counts: dict[str, int]) -> None:
    """The engine's own ``memory_breakdown()`` (what the planner is checked against on every layout) agrees
    with the storages counted here; it also counts AdamW's 0-dim step counters (4 bytes each on the host),
    which the planner leaves out of device memory."""
    hook = engine.memory_breakdown()
    assert hook["params"] == counts["params"], (hook, counts)
    assert hook["grads"] == counts["grads"], (hook, counts)
    assert hook["optimizer"] == counts["optimizer"] + 4 * counts["step_counters"], (hook, counts)
