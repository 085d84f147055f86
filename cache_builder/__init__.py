"""Video tensor cache: exact Qwen-VL frames decoded once with ffmpeg, stored in HDF5, read by training and eval.

Readers use :func:`open_cache`; builds run as the ``cache`` stage or ``python -m cache_builder build``.
Names are imported on first use, so the command line starts without loading torch or h5py.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CacheMiss": "cache_builder.reader",
    "CacheReader": "cache_builder.reader",
    "CorruptEntryError": "cache_builder.errors",
    "open_cache": "cache_builder.reader",
    "processor_kwargs": "cache_builder.processor_inputs",
    "vllm_video_input": "cache_builder.processor_inputs",
    "ImageSpec": "cache_builder.spec",
    "SpecMismatchError": "cache_builder.spec",
    "VideoSpec": "cache_builder.spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cache_builder' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
