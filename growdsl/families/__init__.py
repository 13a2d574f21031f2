"""The model families: one file each (`bert`, `gpt2`, `llama`, `qwen2`, `mistral`), found
through a registry that a user's package extends with an entry point (no torch here).

A package adds a family the way `AutoConfig.register` adds a config class: it builds a
`Family` and names it in its `pyproject.toml`,

    [project.entry-points."growdsl.families"]
    myfam = "mypkg.growdsl_family:FAMILY"

or calls `growdsl.families.register(FAMILY)` before using growdsl. See docs/families.md.
Everything the rest of growdsl asks about a family goes through `get(name)`.
"""

from __future__ import annotations

import importlib
import math
from typing import TYPE_CHECKING

from growdsl.families.base import (
    CARRIED,
    COMMON_FIELDS,
    INERT,
    PER_LAYER,
    REFUSED,
    TENSORS,
    Axes,
    Family,
    Field,
    Inert,
    Tensor,
    WeightMap,
)

if TYPE_CHECKING:
    from growdsl.shapes import Shape

__all__ = ["CARRIED", "COMMON_FIELDS", "ENTRY_POINT_GROUP", "INERT", "PER_LAYER", "REFUSED",
           "TENSORS", "Axes", "Family", "Field", "Inert", "Tensor", "WeightMap", "get", "has",
           "names", "register", "space_sizes", "stored_parameters", "tensor_shapes",
           "weight_map"]

ENTRY_POINT_GROUP = "growdsl.families"
BUILTIN = ("bert", "gpt2", "llama", "qwen2", "mistral")

_REGISTRY: dict[str, Family] = {}
_builtin_loaded = False
_plugins_loaded = False


def register(family: Family, *, replace: bool = False) -> None:
    """Make `family` known under `family.name` (its HF `model_type`)."""
    if not isinstance(family, Family):
        raise TypeError(f"expected a growdsl.families.Family, got {type(family).__name__}")
    if family.name in _REGISTRY and not replace and _REGISTRY[family.name] is not family:
        raise ValueError(f"a family `{family.name}` is already registered")
    _REGISTRY[family.name] = family


def _load_builtin() -> None:
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        for name in BUILTIN:
            register(importlib.import_module(f"growdsl.families.{name}").FAMILY)


def _load_plugins() -> None:
    """The families of other packages (entry points); a built-in name is never replaced.
    Read only when a name is not built in, or all names are asked for: importing
    importlib.metadata is a tenth of a fresh `growdsl check`."""
    global _plugins_loaded
    _load_builtin()
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name not in _REGISTRY:
            register(point.load())


def names(*, plugins: bool = True) -> tuple[str, ...]:
    """Every registered family's name (`plugins=False`: without reading other packages'
    entry points, i.e. the built-in families and those `register`ed so far)."""
    if plugins:
        _load_plugins()
    else:
        _load_builtin()
    return tuple(_REGISTRY)


def has(name: str) -> bool:
    """Whether a family `name` is registered (other packages' read only if it is not built in)."""
    return name in names(plugins=False) or name in names()


def get(name: str) -> Family:
    """The family `name`; KeyError (naming the known ones) when there is none."""
    _load_builtin()
    if name not in _REGISTRY:
        _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model family `{name}` (known: {', '.join(_REGISTRY)})") from None


def _factorized(fam: Family, axes: WeightMap) -> WeightMap:
    """Replace each FFN matrix `m` by `m.0` (in -> rank) and `m.1` (rank -> out)."""
    out: WeightMap = {}
    for suffix, ax in axes.items():
        module, _, leaf = suffix.rpartition(".")
        if module not in (*fam.ffn_in, fam.ffn_out):
            out[suffix] = ax
            continue
        if leaf == "bias":
            out[f"{module}.1.bias"] = ax
            continue
        o_ax, i_ax = (ax[1], ax[0]) if fam.conv1d else (ax[0], ax[1])
        out[f"{module}.0.weight"] = (("R", "o"), i_ax)
        out[f"{module}.1.weight"] = (o_ax, ("R", "i"))
    return out


def weight_map(shape: Shape) -> WeightMap:
    """Every stored tensor of the model `shape` describes, with its axes' spaces; tied
    copies (a tied head) are left out: they are re-tied by the model, never stored twice."""
    fam = get(shape.family)
    glob, layer = _parts(shape)
    out: WeightMap = dict(glob)
    for i in range(shape.layers):
        for suffix, ax in layer.items():
            out[fam.layer_key(i, suffix)] = ax
    return out


def _parts(shape: Shape) -> tuple[WeightMap, WeightMap]:
    """The tensors outside the layers, and one layer's (every layer holds the same)."""
    fam = get(shape.family)
    layer = fam.layer_axes(shape)
    if shape.ffn_rank:
        layer = _factorized(fam, layer)
    return dict(fam.global_axes(shape)), layer


def stored_parameters(shape: Shape) -> int:
    """How many numbers the weight map stores: the tensors outside the layers plus one
    layer's times the depth (as `weight_map` lists them, without enumerating the layers)."""
    size = space_sizes(shape)

    def count(part: WeightMap) -> int:
        return sum(math.prod(size[space] for space, _ in axes) for axes in part.values())

    glob, layer = _parts(shape)
    return count(glob) + shape.layers * count(layer)


def space_sizes(shape: Shape, type_vocab: int | None = None) -> dict[str, int]:
    """The length of every space for `shape`."""
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    types = type_vocab if type_vocab is not None else int(shape.settings.get("type_vocab_size", 2))
    return {"D": shape.hidden, "Q": q, "KV": kv, "QKV": q + 2 * kv, "F": shape.ffn_stored,
            "R": shape.ffn_rank, "V": shape.vocab, "P": shape.positions, "T": types}


def tensor_shapes(shape: Shape, type_vocab: int | None = None) -> dict[str, tuple[int, ...]]:
    """Every stored tensor's shape, without building the model."""
    size = space_sizes(shape, type_vocab)
    return {key: tuple(size[space] for space, _ in axes)
            for key, axes in weight_map(shape).items()}
