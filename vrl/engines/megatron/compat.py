"""Megatron-Core on machines without a GPU: the few hard-coded CUDA calls, redirected to the CPU.

Why: megatron-core 0.16.1 runs on the gloo backend unchanged, but a handful of its code paths assume a
CUDA device exists:

- ``torch.cuda.current_device()`` as the device of buffers (rotary ``inv_freq`` of the multimodal
  RoPE, the attention's global memory buffer, tensor-parallel all-gather outputs, p2p shape buffers);
- ``torch.zeros(..., device="cuda")`` token counters in the pipeline schedules and ``weight.cuda()``
  when the tied embedding is synchronised between the first and last pipeline stage;
- ``torch.cuda.synchronize()`` after pipeline send/recv;
- the model-parallel RNG tracker, which saves and restores CUDA RNG states around dropout, and activation
  recomputation, which saves the CUDA RNG state in forward and restores it in backward.

:func:`cpu_redirect` is a context manager, entered by the engine around everything that calls into
megatron-core (model construction, forward/backward schedules). Without a GPU it maps ``current_device``
to the CPU, turns ``synchronize`` into a no-op, lets megatron's CUDA-RNG get/set helpers save nothing
and, through a torch-function mode, rewrites CUDA device arguments of tensor factories and
``Tensor.cuda()`` to the CPU. With a GPU it does nothing. Nothing is patched outside the ``with`` block,
so the rest of the process (the HF or vLLM rollout, the trainer) never sees it. :func:`cpu_optimizer` adds
what megatron's distributed optimizer needs on top (CUDA tensor-type names). :func:`init_rng` seeds
megatron's RNG tracker: CUDA RNG states with a GPU, an inference tracker (no state) without one. Both
RNG shortcuts are exact only because Qwen-VL decoders have no dropout (the engine checks it is 0).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from vrl import device

_CPU = torch.device("cpu")
_lock = threading.RLock()
_depth = 0
_saved: list[tuple[Any, str, Any]] = []


def _is_cuda(dev: Any) -> bool:
    if isinstance(dev, str):
        return dev.startswith("cuda")
    if isinstance(dev, torch.device):
        return dev.type == "cuda"
    return isinstance(dev, int) and not isinstance(dev, bool)


class _CudaToCpu(TorchFunctionMode):
    """Rewrites ``device=cuda`` keyword arguments and ``Tensor.cuda()`` to the CPU."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.cuda:
            return args[0]
        if "device" in kwargs and _is_cuda(kwargs["device"]):
            kwargs = {**kwargs, "device": _CPU}
        return func(*args, **kwargs)


def _patches() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, CPU replacement) of every redirected call."""
    from megatron.core.tensor_parallel import random as mc_random

    return [
        (torch.cuda, "current_device", lambda: _CPU),
        (torch.cuda, "synchronize", lambda *a, **k: None),
        (mc_random, "_get_cuda_rng_state", lambda *a, **k: torch.zeros(0, dtype=torch.uint8)),
        (mc_random, "_set_cuda_rng_state", lambda *a, **k: None),
    ]


@contextlib.contextmanager
def cpu_redirect() -> Iterator[None]:
    """Run megatron-core code on the CPU (a no-op when a GPU is present). Re-entrant."""
    global _depth, _saved
    if device.has_gpu():
        yield
        return
    with _lock:
        if _depth == 0:
            patches = _patches()
            _saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
            for owner, name, replacement in patches:
                setattr(owner, name, replacement)
        _depth += 1
    try:
        with _CudaToCpu():
            yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for owner, name, original in _saved:
                    setattr(owner, name, original)


class _CudaTensorTypes(TorchFunctionMode):
    """``Tensor.type()`` (no argument) names CPU tensors as their CUDA counterparts."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.Tensor.type and len(args) == 1 and not kwargs and isinstance(out, str):
            return out.replace("torch.", "torch.cuda.", 1) if not out.startswith("torch.cuda.") else out
        return out


@contextlib.contextmanager
def cpu_optimizer() -> Iterator[None]:
    """:func:`cpu_redirect` for megatron's DDP wrapper and distributed optimizer (no-op with a GPU).

    They sort parameters by ``param.type()`` strings and accept only ``torch.cuda.*Tensor`` ones; on the
    CPU the same strings without ``cuda`` are mapped to those names. Entered only around constructing
    and stepping them, never around the model's forward, where code could take a CUDA-only branch."""
    if device.has_gpu():
        yield
        return
    with cpu_redirect(), _CudaTensorTypes():
        yield


def init_rng(seed: int) -> None:
    """Seed megatron's model-parallel RNG tracker (CUDA states on GPUs; a stateless tracker on CPU)."""
    from megatron.core import tensor_parallel

    if device.has_gpu():
        tensor_parallel.model_parallel_cuda_manual_seed(seed)
        return
    tensor_parallel.random.initialize_rng_tracker(inference_rng_tracker=True, force_reset=True)
