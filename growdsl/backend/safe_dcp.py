"""Reading a `torch.distributed.checkpoint` (DCP) folder without running code from it.

Stock DCP unpickles two things from the files it reads: the `.metadata` file
(`pickle.load`) and every non-tensor entry of the state dict (a `torch.load` that allows
any object, e.g. for an optimizer's `lr` and `betas`). A crafted checkpoint could
run code through either. Here the metadata is read by an unpickler that builds only DCP's
own metadata records (an allow-list of classes, nothing callable beyond them), and the
non-tensor entries by `torch.load(weights_only=True)`; anything else is refused with
`UnsafeCheckpoint` (an `Exception`, so that callers treat the folder as damaged).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import ReadItem

_METADATA_CLASSES = {
    ("torch.distributed.checkpoint.metadata", name) for name in (
        "Metadata", "MetadataIndex", "StorageMeta", "TensorProperties", "TensorStorageMetadata",
        "BytesStorageMetadata", "ChunkStorageMetadata", "_MEM_FORMAT_ENCODING")
} | {("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
     ("torch", "Size"), ("torch.serialization", "_get_layout"),
     ("pathlib", "PosixPath"), ("pathlib._local", "PosixPath")}


class UnsafeCheckpoint(Exception):
    """A checkpoint file asks to build something a checkpoint never holds."""


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _METADATA_CLASSES:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise UnsafeCheckpoint(f"DCP metadata refers to {module}.{name}, which a checkpoint "
                               "never holds (not loaded: it could run code)")


def read_metadata(path: str) -> Metadata:
    """A DCP folder's `.metadata`, read with the allow-list unpickler."""
    with open(f"{path}/.metadata", "rb") as f:
        try:
            metadata = _MetadataUnpickler(f).load()
        except UnsafeCheckpoint:
            raise
        except Exception as exc:        # truncated or garbled: a damaged checkpoint
            raise UnsafeCheckpoint(f"DCP metadata cannot be read ({exc})") from None
    if not isinstance(metadata, Metadata):
        raise UnsafeCheckpoint(f"DCP metadata is a {type(metadata).__name__}, not Metadata")
    return metadata


class SafeReader(FileSystemReader):
    """`FileSystemReader` whose metadata is read by `read_metadata` (no arbitrary pickle)."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        if kwargs.get("rank") is not None:
            raise UnsafeCheckpoint("per-rank DCP metadata is not used by growdsl")
        metadata = read_metadata(str(self.path))
        storage = getattr(metadata, "storage_meta", None) or StorageMeta()
        storage.load_id = self.load_id
        metadata.storage_meta = storage
        return metadata


class SafeLoadPlanner(DefaultLoadPlanner):
    """`DefaultLoadPlanner` whose non-tensor entries load with `weights_only=True`."""

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        try:
            loaded = torch.load(value, weights_only=True)
        except Exception as exc:        # pickle.UnpicklingError and friends
            raise UnsafeCheckpoint(f"{read_item.dest_index.fqn}: not plain data ({exc})") from None
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], loaded)
        else:
            self.state_dict[read_item.dest_index.fqn] = loaded
