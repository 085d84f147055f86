"""Video tensor cache: exact Qwen-VL frames decoded once with ffmpeg, stored in HDF5, read by training and eval.

Readers use :func:`open_cache`; builds run as the ``cache`` stage or ``python -m cache_builder build``.
"""

from cache_builder.processor_inputs import processor_kwargs
from cache_builder.reader import CacheMiss, CacheReader, open_cache
from cache_builder.spec import ImageSpec, SpecMismatchError, VideoSpec

__all__ = [
    "CacheMiss",
    "CacheReader",
    "ImageSpec",
    "SpecMismatchError",
    "VideoSpec",
    "open_cache",
    "processor_kwargs",
]
