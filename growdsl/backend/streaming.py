"""Grow a safetensors checkpoint without loading it: read one tensor at a time, write each
grown tensor as soon as it is made.

The operators run over a lazy state whose leaves read single tensors from the source files
(`safe_open`), so depth growth holds a few tensors at once whatever the model's size and
width growth one tensor and its copy (AKI: two layers' worth). The output is one
`model.safetensors`: its header is known in advance from the weight map of the grown shape,
so the file is written front to back. (The safetensors library writes only whole state
dicts; the format is an 8-byte header length, a JSON header, then raw little-endian bytes.)
"""

from __future__ import annotations

import functools
import json
import shutil
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from transformers import AutoConfig, PretrainedConfig

from growdsl.backend.families import tensor_shapes
from growdsl.backend.models import shape_of
from growdsl.backend.surgery import grow_lazy, plan_step, step_config
from growdsl.backend.surgery.core import LazyState
from growdsl.ir import Growth
from growdsl.operators import OpResult
from growdsl.shapes import Shape

WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.h5", "*.msgpack")
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64"}


def source_files(src_dir: Path) -> list[Path]:
    """The checkpoint's safetensors files (single or sharded)."""
    files = sorted(src_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{src_dir}: no *.safetensors file (save with save_pretrained)")
    return files


def _read(handle: Any, key: str) -> torch.Tensor:
    tensor: torch.Tensor = handle.get_tensor(key)
    return tensor


def open_lazy(stack: ExitStack, src_dir: Path) -> tuple[LazyState, torch.dtype]:
    """Thunks reading single tensors from the checkpoint, and its (first tensor's) dtype."""
    state: LazyState = {}
    dtype: torch.dtype | None = None
    for path in source_files(src_dir):
        handle = stack.enter_context(safe_open(str(path), framework="pt"))
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
            state[key] = functools.partial(_read, handle, key)
            if dtype is None:
                name = handle.get_slice(key).get_dtype()
                dtype = {v: k for k, v in DTYPES.items()}.get(name, torch.float32)
    return state, dtype or torch.float32


def write_streaming(path: Path, shapes: dict[str, tuple[int, ...]], tensors: Iterator[
        tuple[str, torch.Tensor]], dtype: torch.dtype) -> int:
    """Write a safetensors file front to back; returns the bytes written."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    item = torch.empty((), dtype=dtype).element_size()
    for key, shape in shapes.items():
        size = item * int(torch.Size(shape).numel())
        header[key] = {"dtype": DTYPES[dtype], "shape": list(shape),
                       "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((-len(blob)) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for key, tensor in tensors:
            want = shapes[key]
            if tuple(tensor.shape) != want:
                raise RuntimeError(f"{key}: made {tuple(tensor.shape)}, header says {want}")
            raw = tensor.to(dtype).contiguous().view(-1).view(torch.uint8).numpy()
            f.write(raw)  # type: ignore[arg-type]
    return 8 + len(blob) + offset


def grow_checkpoint(src_dir: str | Path, out_dir: str | Path, dst: Shape,
                    growth: Growth) -> tuple[Shape, list[OpResult], PretrainedConfig, int]:
    """Stream-grow `src_dir` into `out_dir`; returns the grown shape, the per-operator
    static results, the new config and the bytes written."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    config = AutoConfig.from_pretrained(str(src_dir), local_files_only=True)
    src = shape_of(config)
    final, steps = plan_step(src, dst, growth)
    new_config = step_config(final, steps)
    _carry_settings(config, new_config)
    shapes = tensor_shapes(final, getattr(config, "type_vocab_size", 2))
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        source, dtype = open_lazy(stack, src_dir)
        missing = [k for k in tensor_shapes(src) if k not in source]
        if missing:
            raise KeyError(f"{src_dir} lacks tensors the {src.family} model needs: "
                           f"{', '.join(missing[:4])}")
        grown = grow_lazy(source, steps, growth.seed, "weight")
        made = ((key, grown[key]()) for key in shapes)
        written = write_streaming(out_dir / "model.safetensors", shapes, made, dtype)
    new_config.save_pretrained(str(out_dir))
    _copy_side_files(src_dir, out_dir)
    return final, steps, new_config, written


def _carry_settings(old: PretrainedConfig, new: PretrainedConfig) -> None:
    """Keep the source's non-shape settings (activation, eps, token ids, dropout...)."""
    shape_fields = set(new.to_diff_dict())
    for key, value in old.to_diff_dict().items():
        if key not in shape_fields and key not in ("architectures", "transformers_version"):
            setattr(new, key, value)


def _copy_side_files(src_dir: Path, out_dir: Path) -> None:
    """Tokenizer and other non-weight files travel with the model."""
    skip = {"config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json"}
    for path in src_dir.iterdir():
        if path.is_file() and path.name not in skip and not any(
                path.match(p) for p in WEIGHT_FILES):
            shutil.copy2(path, out_dir / path.name)
