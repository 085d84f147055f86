"""Load a torch distributed checkpoint (DCP) without running code from it.

torch reads a DCP folder's ``.metadata`` with plain ``pickle.load``
(``FileSystemReader.read_metadata``) and its non-tensor items — optimizer hyperparameters such as ``lr``
or ``betas`` — with ``torch.load(weights_only=False)`` (``DefaultLoadPlanner.load_bytes``); only tensors
are read weights-only. :func:`load_dcp` replaces both: the metadata goes through a restricted unpickler
that admits DCP's own metadata types, the items through the weights-only loader. A crafted file raises
:class:`~vrl.safe_load.UnsafeFileError` on every rank and nothing of it runs.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import pathlib
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
from torch.distributed.checkpoint import filesystem as dcp_filesystem
from torch.distributed.checkpoint import metadata as dcp_metadata
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.planner import ReadItem

from vrl.safe_load import UnsafeFileError, load_tensors, restricted_load


def _metadata_types() -> dict[str, set[str]]:
    """The globals a DCP ``.metadata`` pickle names: DCP's metadata dataclasses and enums, the storage
    record of the file system writer, ``torch.Size``, dtypes and layouts, and the checkpoint's path."""
    own = {
        name
        for name, obj in vars(dcp_metadata).items()
        if isinstance(obj, type)
        and obj.__module__ == dcp_metadata.__name__
        and (dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum))
    }
    dtypes = {name for name, obj in vars(torch).items() if isinstance(obj, torch.dtype)}
    return {
        dcp_metadata.__name__: own,
        dcp_filesystem.__name__: {"_StorageInfo"},
        "torch": {"Size", *dtypes},
        "torch.serialization": {"_get_layout"},  # how torch pickles a layout: by name
        "pathlib": {"PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath", "Path"},
        "collections": {"OrderedDict"},
    }


METADATA_TYPES = _metadata_types()


class SafeFileSystemReader(FileSystemReader):
    """DCP's file system reader, with the ``.metadata`` pickle read through a restricted unpickler.

    DCP turns a failed metadata read into a message inside another error; ``refused`` keeps ours."""

    refused: UnsafeFileError | None = None

    def read_metadata(self, *args: Any, **kwargs: Any) -> dcp_metadata.Metadata:
        path = self._get_metadata_path(kwargs.get("rank"))
        with self.fs.create_stream(path, "rb") as fh:
            try:
                metadata = restricted_load(fh, METADATA_TYPES, str(path))
            except UnsafeFileError as e:
                self.refused = e
                raise
        if not isinstance(metadata, dcp_metadata.Metadata):
            self.refused = UnsafeFileError(f"{path} is not a torch distributed checkpoint's metadata")
            raise self.refused
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = dcp_metadata.StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class SafeLoadPlanner(DefaultLoadPlanner):
    """DCP's default load planner, with non-tensor items read weights-only."""

    def __init__(self, checkpoint: str) -> None:
        super().__init__()
        self.checkpoint = checkpoint

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        fqn = read_item.dest_index.fqn
        obj = load_tensors(value, source=f"item '{fqn}' of the checkpoint {self.checkpoint}")
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[fqn], obj)
        else:
            self.state_dict[fqn] = obj


def load_dcp(state: dict[str, Any], path: str | Path) -> None:
    """``dcp.load(state, checkpoint_id=path)`` without running code from the files (collective)."""
    reader, planner = SafeFileSystemReader(pathlib.Path(path)), SafeLoadPlanner(str(path))
    try:
        dcp.load(state, storage_reader=reader, planner=planner)
    except CheckpointException as e:  # DCP gathers every rank's failure into one; show ours plainly
        if reader.refused is not None:
            raise reader.refused from None
        for exc, _trace in e.failures.values():
            if isinstance(exc, UnsafeFileError):
                raise exc from None
        raise
