"""Read back files without running code from them.

A pickle names callables that the loader calls: a crafted checkpoint in a shared folder would run its
author's code in the training job. Everything the project reads back is therefore JSON, safetensors, HDF5,
or a pickle read with one of the two loaders here: torch's weights-only loader (tensors and plain data:
numbers, strings, lists, tuples, dicts, None) for torch files, and :func:`restricted_load` for pickles
that hold a few known classes (torch distributed checkpoint metadata). A refused file raises
:class:`UnsafeFileError` naming the file and what it asked to import; nothing of it has run.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO, Any

import torch

#: ``{module: {name, ...}}`` or a predicate ``(module, name) -> bool``
Allowed = Mapping[str, Collection[str]] | Callable[[str, str], bool]


class UnsafeFileError(ValueError):
    """A file holds (or asks to import) something a genuine file of its kind never does."""


def _refusal(source: str, detail: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"refused to load {source}: {detail}. A file of this kind written by vrl never needs that: this "
        "one was crafted or replaced, and loading it could run code (nothing of it ran). Delete it, or "
        "the checkpoint holding it, unless you know where it came from."
    )


def load_tensors(file: str | Path | IO[bytes], map_location: Any = None, source: str = "") -> Any:
    """``torch.load(file, weights_only=True)``: tensors and plain data only, else :class:`UnsafeFileError`
    naming ``source`` (default: the path)."""
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        reason = _weights_only_reason(e)
        if reason is None:
            raise
        raise _refusal(source or str(file), reason) from None


def _weights_only_reason(err: Exception) -> str | None:
    """What torch's weights-only loader refused, from its error (without its advice to load with
    ``weights_only=False``); None when the error is not such a refusal."""
    for line in str(err).splitlines():
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].strip()
            return reason.split(" Please use ", 1)[0].rstrip(".")
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only ``allowed`` globals.

    Pickle builds objects only through globals it imports (a class, a function to call); refusing every
    global outside the list leaves plain containers, numbers and strings plus instances of the listed
    types, built the way those types define.
    """

    def __init__(self, file: IO[bytes], allowed: Allowed, source: str) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        ok = self._allowed(module, name) if callable(self._allowed) else name in self._allowed.get(module, ())
        if not ok:
            raise _refusal(self._source, f"it asks to import {module}.{name}, which is not an allowed type")
        return super().find_class(module, name)


def restricted_load(file: IO[bytes], allowed: Allowed, source: str) -> Any:
    """Unpickle ``file`` admitting only ``allowed`` globals; ``source`` names the file in errors."""
    return RestrictedUnpickler(file, allowed, source).load()
