"""Grow a safetensors checkpoint without loading it: read one tensor at a time, write each
grown tensor as soon as it is made.

The operators run over a lazy state whose leaves read single tensors from the source files
(`safe_open`), so depth growth holds a few tensors at once whatever the model's size and
width growth one tensor and its copy (AKI: two layers' worth). The output is one
`model.safetensors`: its header is known in advance from the weight map of the grown shape,
so the file is written front to back. (The safetensors library writes only whole state
dicts; the format is an 8-byte header length, a JSON header, then raw little-endian bytes.)

The checkpoint may be a full model (`BertForMaskedLM`, ...) or a bare one (`BertModel`,
...: `families.layout`); the grown one is written in the same layout, with the source's
config settings and `architectures` kept. A checkpoint growdsl cannot read (no config, a
config `growdsl check` would refuse -- a size not a positive whole number within bounds --,
unsupported type or architecture, no safetensors, more weights implied than stored,
missing or mis-shaped tensors, stored tensors outside the map that are neither known to be
inert nor dropped by the user's `--drop` globs), an output path that is a file, the source itself or a
non-empty folder (without `replace`), or a failed write is a GrowError (E730-E739), never
a traceback (E730-E739, E742, E743); the output is written aside and renamed into place (`grow_output`).
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, PretrainedConfig

from growdsl import families
from growdsl.backend import faults
from growdsl.backend.families import family
from growdsl.backend.families.layout import Layout, LeftOut, detect
from growdsl.backend.fold import fold_mask
from growdsl.backend.grow_output import check_out_dir, copy_side_files, staged_output
from growdsl.backend.models import is_plain, model_class, shape_of, weights_name
from growdsl.backend.sizes import weights_bound_problem
from growdsl.backend.surgery import grow_lazy, plan_step, step_config
from growdsl.backend.surgery.core import LazyState
from growdsl.errors import Diagnostic, GrowError
from growdsl.hf_config import config_problem, field_problem
from growdsl.ir import Growth
from growdsl.operators import OpResult
from growdsl.shapes import Shape
from growdsl.source import Source, Span

WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.h5", "*.msgpack")
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Checkpoint:
    """An open source checkpoint: its config and shape, its layout, thunks reading single
    tensors (canonical keys), the weights' dtype, and the stored tensors growth leaves out
    (outside the layout's map: known inert, or dropped by the user)."""

    config: PretrainedConfig
    shape: Shape
    layout: Layout
    state: LazyState
    dtype: torch.dtype
    left_out: LeftOut

    @property
    def dropped(self) -> tuple[str, ...]:
        """Every stored key growth leaves out."""
        return (*(key for key, _ in self.left_out.inert), *self.left_out.dropped)


def read_config(src_dir: Path) -> tuple[PretrainedConfig, Shape]:
    """The checkpoint's config and shape; a GrowError when growdsl cannot read them."""
    if not (src_dir / "config.json").is_file():
        raise checkpoint_error(src_dir, "E730", "not a Hugging Face model directory (no "
                               "config.json)", "save the model with `save_pretrained`")
    try:
        raw = json.loads((src_dir / "config.json").read_text())
        model_type = raw.get("model_type") if isinstance(raw, dict) else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise checkpoint_error(src_dir, "E730", f"config.json cannot be read: {error}",
                               None) from None
    if model_type not in families.names():
        raise checkpoint_error(src_dir, "E731", f"model type `{model_type}` is not supported",
                               f"growdsl grows model types {', '.join(families.names())}")
    problem = config_problem(model_type, raw)      # `growdsl check`'s own test, before
    if problem and problem != field_problem(model_type, raw):  # transformers sees the sizes
        raise checkpoint_error(src_dir, "E730", f"config.json: {problem}",
                               "growdsl reads the Hugging Face config of a model of a registered "
                               "family")
    try:
        config = AutoConfig.from_pretrained(str(src_dir), local_files_only=True)
    except Exception as error:  # transformers raises many kinds for a bad config
        raise checkpoint_error(src_dir, "E730", f"config.json cannot be read: {error}",
                               None) from None
    problem = field_problem(model_type, raw)
    if problem:
        raise checkpoint_error(src_dir, "E731", f"config.json: {problem}",
                               "docs/operators.md lists the fields each family carries; "
                               "docs/families.md how to add one")
    return config, shape_of(config)


def source_files(src_dir: Path) -> list[Path]:
    """The checkpoint's safetensors files (single or sharded)."""
    files = sorted(src_dir.glob("*.safetensors"))
    if not files:
        others = sorted(p.name for pattern in WEIGHT_FILES[1:] for p in src_dir.glob(pattern))
        found = f" (found {', '.join(others)})" if others else ""
        raise checkpoint_error(src_dir, "E733", f"no *.safetensors weights{found}",
                               "load it once and save it with `save_pretrained` (safetensors "
                               "is the default), then grow that copy")
    return files


def _read(handle: Any, key: str) -> torch.Tensor:
    tensor: torch.Tensor = handle.get_tensor(key)
    return tensor


def open_checkpoint(stack: ExitStack, src_dir: Path, drop: tuple[str, ...] = ()) -> Checkpoint:
    """Open `src_dir` for growth: layout detected, every tensor its map needs present with
    the shape config.json implies, every other stored tensor known inert or matched by a
    glob of `drop`; a GrowError otherwise. Nothing is read yet."""
    config, shape = read_config(src_dir)
    stored: dict[str, Any] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    dtype: torch.dtype | None = None
    for path in source_files(src_dir):
        try:
            handle = stack.enter_context(safe_open(str(path), framework="pt"))
        except (SafetensorError, OSError) as error:
            raise checkpoint_error(src_dir, "E736", f"{path.name} cannot be read: {error}",
                                   None) from None
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
            stored[key] = handle
            info = handle.get_slice(key)
            shapes[key] = tuple(info.get_shape())
            dtype = dtype or {v: k for k, v in DTYPES.items()}.get(info.get_dtype())
    problem = weights_bound_problem(shape, source_files(src_dir))   # before any map is built
    if problem:
        raise checkpoint_error(src_dir, "E735", problem, "is config.json (sizes) the one saved "
                               "with these weights?")
    layout = detect(shape.family, getattr(config, "architectures", None), stored)
    if isinstance(layout, str):
        raise checkpoint_error(src_dir, "E732", layout, None)
    shape = layout.own(shape)
    expected = layout.tensor_shapes(shape, getattr(config, "type_vocab_size", 2))
    _check_tensors(src_dir, layout, expected, shapes)
    state: LazyState = {layout.canonical_key(k): functools.partial(_read, stored[k], k)
                        for k in expected}
    left = layout.left_out([k for k in stored if k not in expected], drop)
    check_left_out(left, shape.family, src_dir, "--drop")
    return Checkpoint(config=config, shape=shape, layout=layout, state=state,
                      dtype=dtype or torch.float32, left_out=left)


def unused_drops(left: LeftOut, src_dir: Path) -> list[Diagnostic]:
    """E743 for each `--drop` glob that matches no stored tensor left out, located in it."""
    return [Diagnostic(
        code="E743", source=Source(path="--drop", text=glob),
        span=Span(line=1, col=1, end_line=1, end_col=max(2, len(glob) + 1)),
        message=f"`{glob}` matches no tensor of {src_dir} that would be left out",
        help="--drop names stored tensors outside the model's weight map (E742 lists them); "
             "the tensors of the map are always carried") for glob in left.unused]


def check_left_out(left: LeftOut, family_name: str, src_dir: Path, option: str) -> None:
    """E743 for a `--drop` glob that matches no stored tensor growth leaves out, E742 for
    stored tensors outside the map that are neither known inert nor dropped."""
    if left.unused:
        raise GrowError(unused_drops(left, src_dir))
    if left.unknown:
        message, hint = left.refusal(family_name, option)
        raise checkpoint_error(src_dir, "E742", message, hint)


def _check_tensors(src_dir: Path, layout: Layout, expected: dict[str, tuple[int, ...]],
                   found: dict[str, tuple[int, ...]]) -> None:
    missing = [k for k in expected if k not in found]
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise checkpoint_error(src_dir, "E734", f"the {layout.describe()} checkpoint lacks "
                               f"tensors its config.json implies: {', '.join(missing[:4])}{more}",
                               "is config.json (`architectures`, sizes) the one saved with "
                               "these weights?")
    wrong = [f"{k} is {list(found[k])}, config.json implies {list(v)}"
             for k, v in expected.items() if found[k] != v]
    if wrong:
        raise checkpoint_error(src_dir, "E735", f"tensor shapes disagree with config.json: "
                               f"{'; '.join(wrong[:3])}", None)


def checkpoint_error(src_dir: Path, code: str, message: str, hint: str | None) -> GrowError:
    """A user-facing error about the checkpoint at `src_dir`."""
    return GrowError([Diagnostic(code=code, message=message, help=hint,
                                 source=Source(path=str(src_dir), text=""))])


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
                    growth: Growth, replace: bool = False, drop: tuple[str, ...] = ()
                    ) -> tuple[Shape, list[OpResult], PretrainedConfig, int]:
    """Stream-grow `src_dir` into `out_dir` in the source's layout; returns the grown
    shape, the per-operator static results, the new config and the bytes written. A
    non-empty `out_dir` is refused unless `replace`; the output appears whole or not at
    all (`grow_output.staged_output`). `drop`: globs of stored tensors outside the map
    to leave out (the others are refused, `open_checkpoint`)."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    check_out_dir(src_dir, out_dir, replace)
    with ExitStack() as stack:
        source = open_checkpoint(stack, src_dir, drop)
        final, steps = plan_step(source.shape, source.layout.own(dst), growth)
        new_config = step_config(final, steps, base=source.config)
        if source.layout.head:          # pooled BERT has its own class; unpooled, the stock one
            new_config.architectures = [model_class(final).__name__]
        if not source.layout.head:      # the config's own setting, for a head added later
            new_config.tie_word_embeddings = source.config.tie_word_embeddings
        shapes = source.layout.tensor_shapes(final, getattr(source.config, "type_vocab_size", 2))
        grown = grow_lazy(source.state, steps, growth.seed, "weight", layout=source.layout)
        mask = (getattr(new_config, "growdsl", None) or {}).get("mask")
        folded = fold_mask(grown, final, source.layout.weight_map(final), mask) if mask \
            else None
        if folded is not None:          # a stock model computing the grown function
            grown = folded
            del new_config.growdsl["mask"]
        if not source.layout.head and not is_plain(new_config):
            raise checkpoint_error(src_dir, "E737", f"the bare {source.layout.architecture} "
                                   "cannot carry the gate `masked` growth installs on a "
                                   "post-LN model", f"grow a {family(final.family).model_class} "
                                   "checkpoint")
        made = ((source.layout.stored_key(key), grown[key]()) for key in
                source.layout.weight_map(final))
        with staged_output(src_dir, out_dir, replace) as tmp:
            faults.write_point("grow-weights")
            written = write_streaming(tmp / weights_name(new_config), shapes, made,
                                      source.dtype)
            new_config.save_pretrained(str(tmp))
            copy_side_files(src_dir, tmp)
    return final, steps, new_config, written
