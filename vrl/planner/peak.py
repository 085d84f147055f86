"""Measuring activation memory on CPU, the method the planner's estimate is checked against.

:class:`PeakLiveBytes` is a ``TorchDispatchMode`` that sees every tensor an operator returns (forward and
backward), follows its storage with a weak reference until it is freed, and records the peak of the bytes
alive at once. Parameters and, once autograd has accumulated them, gradients are excluded: what remains
is activation memory, saved and transient. :func:`measure_update` runs one micro-batch the way the FSDP
engine does (``ResponseLogProbs`` forward, a loss over the response log-probs, backward) under it and
returns the peak; :func:`saved_bytes_by_module` counts what autograd saves per module (saved-tensors hook).
"""

from __future__ import annotations

import weakref
from contextlib import ExitStack

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from vrl.models.policy import ResponseLogProbs


class PeakLiveBytes(TorchDispatchMode):
    def __init__(self, excluded: list[torch.Tensor]) -> None:
        super().__init__()
        self._live: dict[int, tuple[weakref.ref, int]] = {}
        self._excluded = {id(t.untyped_storage()) for t in excluded}
        self._pinned = [t.untyped_storage() for t in excluded]  # ids stay unique while we look
        self.current = 0
        self.peak = 0

    def exclude(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        self._pinned.append(storage)
        self._excluded.add(key)
        item = self._live.pop(key, None)
        if item is not None:
            self.current -= item[1]

    def _freed(self, key: int, ref: weakref.ref) -> None:
        item = self._live.get(key)
        if item is not None and item[0] is ref:
            del self._live[key]
            self.current -= item[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = id(storage)
            if key in self._excluded or key in self._live:
                continue
            ref = weakref.ref(storage, lambda r, key=key: self._freed(key, r))
            self._live[key] = (ref, storage.nbytes())
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
        return out


def measure_update(model: torch.nn.Module, mb, *, entropy: bool) -> int:
    """Peak activation bytes of one training micro-batch through ``model`` (an HF Qwen-VL model)."""
    policy = ResponseLogProbs(model).train()
    params = list(model.parameters())
    tracker = PeakLiveBytes(params)
    with ExitStack() as stack:
        handles = [p.register_post_accumulate_grad_hook(lambda p: tracker.exclude(p.grad)) for p in params]
        stack.callback(lambda: [h.remove() for h in handles])
        with tracker:
            logp, ent = policy(mb, with_entropy=entropy)
            loss = -(logp * mb.token_mask).sum() / mb.token_mask.sum()
            if ent is not None:
                loss = loss - 0.01 * ent.sum() / mb.token_mask.sum()
            loss.backward()
    return tracker.peak


def saved_bytes_by_module(model: torch.nn.Module, mb, modules: dict[str, torch.nn.Module]) -> dict[str, int]:
    """Bytes autograd saves while each of ``modules`` runs forward (distinct storages, parameters left out)."""
    params = {id(p.untyped_storage()) for p in model.parameters()}
    where = ["other"]
    saved: dict[int, tuple[torch.UntypedStorage, str]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if id(st) not in params and id(st) not in saved:
            saved[id(st)] = (st, where[0])
        return t

    handles = []
    for name, mod in modules.items():
        handles.append(mod.register_forward_pre_hook(lambda m, a, name=name: where.__setitem__(0, name)))
        handles.append(mod.register_forward_hook(lambda m, a, o: where.__setitem__(0, "other")))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            ResponseLogProbs(model).train()(mb)
    finally:
        for h in handles:
            h.remove()
    out: dict[str, int] = {}
    for st, name in saved.values():
        out[name] = out.get(name, 0) + st.nbytes()
    return out
