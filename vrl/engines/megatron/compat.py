"""Megatron-Core on machines without a GPU: the few hard-coded CUDA calls, redirected to the CPU.

Why: megatron-core 0.16.1 runs on the gloo backend unchanged, but a handful of its code paths assume a
CUDA device exists:

- ``torch.cuda.current_device()`` as the device of buffers (rotary ``inv_freq`` of the multimodal
  RoPE, the attention's global memory buffer, tensor-parallel all-gather outputs, p2p shape buffers);
- ``torch.zeros(..., device="cuda")`` token counters in the pipeline schedules and ``weight.cuda()``
  when the tied embedding is synchronised between the first and last pipeline stage;
- ``torch.cuda.synchronize()`` after pipeline send/recv;
- the model-parallel RNG tracker, which saves and restores CUDA RNG states around dropout.

:func:`cpu_redirect` is a context manager, entered by the engine around everything that calls into
megatron-core (model construction, forward/backward schedules). Without a GPU it maps ``current_device``
to the CPU, turns ``synchronize`` into a no-op and, through a torch-function mode, rewrites CUDA device
arguments of tensor factories and ``Tensor.cuda()`` to the CPU. With a GPU it does nothing. Nothing is
patched outside the ``with`` block, so the rest of the process (the HF or vLLM rollout, the trainer)
never sees it. :func:`init_rng` seeds megatron's RNG tracker: CUDA RNG states with a GPU, an inference
tracker (no state, valid only because every dropout is 0) without one.
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
_saved: tuple[Any, Any] = (None, None)


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


@contextlib.contextmanager
def cpu_redirect() -> Iterator[None]:
    """Run megatron-core code on the CPU (a no-op when a GPU is present). Re-entrant."""
    global _depth, _saved
    if device.has_gpu():
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = (torch.cuda.current_device, torch.cuda.synchronize)
            torch.cuda.current_device = lambda: _CPU  # type: ignore[assignment]
            torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
        _depth += 1
    try:
        with _CudaToCpu():
            yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                torch.cuda.current_device, torch.cuda.synchronize = _saved


def init_rng(seed: int) -> None:
    """Seed megatron's model-parallel RNG tracker (CUDA states on GPUs; a stateless tracker on CPU)."""
    from megatron.core import tensor_parallel

    if device.has_gpu():
        tensor_parallel.model_parallel_cuda_manual_seed(seed)
        return
    tensor_parallel.random.initialize_rng_tracker(inference_rng_tracker=True, force_reset=True)
