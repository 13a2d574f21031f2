"""The two primitives every operator is written with, over a lazy state dict.

A `LazyState` maps each stored key to a thunk that makes the tensor on demand, so the same
operator code grows a model in memory or streams a safetensors checkpoint one tensor at a
time (`backend.streaming`). `Ctx.kind` says what the tensors are: model weights, Adam's
first or second moments (`transform`: rescaled to the grown gradients), or moments under
`transfer` (old slots kept, new ones zero), or anything to be copied without rescaling
(`copy`: e.g. the expected per-entry Adam update in tests).

- `widen`: index every axis through its space's growth map g (Net2Net, Chen et al. 2016;
  bert2BERT FPI, Chen et al. 2022). Weights: `o` axes copy, `i` axes copy and divide by
  the copy count C. Gradients of copies scale by 1/C on `o` axes, so first moments are
  divided by C and second moments by C^2 there (x2: m/2, v/4).
- `relayer`: new layer i takes source layer `sources[i]`, optionally with its residual
  outputs zeroed (identity layers, LLaMA-Pro).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from growdsl.backend.families import Axes, WeightMap, family, weight_map
from growdsl.backend.families.layout import Layout
from growdsl.shapes import Shape

Thunk = Callable[[], torch.Tensor]
LazyState = dict[str, Thunk]
KINDS = ("weight", "exp_avg", "exp_avg_sq", "transfer", "copy")


@dataclass(frozen=True, kw_only=True, slots=True)
class Ctx:
    """What the state holds (`kind`), the growth step's seed for random maps, and the
    checkpoint's layout (None: the full model's weight map)."""

    kind: str = "weight"
    seed: int = 0
    layout: Layout | None = None

    def weight_map(self, shape: Shape) -> WeightMap:
        """The tensors the state holds for `shape` (canonical keys)."""
        return self.layout.weight_map(shape) if self.layout else weight_map(shape)

    def generator(self, salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)


@dataclass(frozen=True, kw_only=True, slots=True)
class Map:
    """A growth map g for one space: new index -> source index; `old` is the source size."""

    g: torch.Tensor
    old: int

    @property
    def counts(self) -> torch.Tensor:
        return torch.bincount(self.g, minlength=self.old)[self.g].to(torch.float64)

    @property
    def first_copies(self) -> torch.Tensor:
        """True where a new unit is the first copy of its source (the old slot)."""
        first = torch.full((self.old,), len(self.g), dtype=torch.long)
        first.scatter_reduce_(0, self.g, torch.arange(len(self.g)), reduce="amin")
        return first[self.g] == torch.arange(len(self.g))

    @property
    def keeps_old(self) -> bool:
        return bool(torch.equal(self.g[: self.old], torch.arange(self.old)))


def lazy(state: Mapping[str, torch.Tensor]) -> LazyState:
    """Thunks over materialized tensors."""
    return {k: functools.partial(_const, v) for k, v in state.items()}


def _const(t: torch.Tensor) -> torch.Tensor:
    return t


def materialize(state: LazyState) -> dict[str, torch.Tensor]:
    """Evaluate every thunk; tensors that would share storage are cloned (safetensors)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, thunk in state.items():
        t = thunk()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[key] = t.contiguous()
    return out


def unit_map(old: int, new: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    """uniform: i -> i mod old; random: old units kept, new ones drawn at random."""
    if new < old:
        raise ValueError(f"a growth map cannot shrink {old} -> {new}")
    if mode == "uniform":
        return torch.arange(new) % old
    extra = torch.randint(0, old, (new - old,), generator=gen)
    return torch.cat([torch.arange(old), extra])


def heads_to_units(g_heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    return (g_heads[:, None] * head_dim + torch.arange(head_dim)).flatten()


def _scale(t: torch.Tensor, axis: int, by: torch.Tensor) -> torch.Tensor:
    view = [1] * t.dim()
    view[axis] = -1
    return t * by.to(t.dtype).view(view)


def expand(t: torch.Tensor, axes: Axes, maps: Mapping[str, Map], kind: str) -> torch.Tensor:
    """Grow one tensor through the maps of its axes' spaces (see the module doc)."""
    for axis, (space, role) in enumerate(axes):
        m = maps.get(space)
        if m is None or (m.old == len(m.g) and m.keeps_old):
            continue
        t = t.index_select(axis, m.g)
        if (kind == "weight" and role == "i") or (kind == "exp_avg" and role == "o"):
            t = _scale(t, axis, 1.0 / m.counts)
        elif kind == "exp_avg_sq" and role == "o":
            t = _scale(t, axis, 1.0 / m.counts**2)
        elif kind == "transfer":
            t = _scale(t, axis, m.first_copies.to(torch.float64))
    return t


def widen(state: LazyState, src: Shape, maps: Mapping[str, Map], ctx: Ctx) -> LazyState:
    """Every tensor of `src`'s weight map grown through `maps`."""
    return {key: functools.partial(_expand_thunk, state[key], axes, maps, ctx.kind)
            for key, axes in ctx.weight_map(src).items()}


def _expand_thunk(thunk: Thunk, axes: Axes, maps: Mapping[str, Map], kind: str) -> torch.Tensor:
    return expand(thunk(), axes, maps, kind)


def relayer(state: LazyState, src: Shape, sources: list[int], zeroed: set[int],
            ctx: Ctx) -> LazyState:
    """New layer i <- source layer `sources[i]`; layers in `zeroed` get their residual
    outputs zeroed. Under `transfer`, only a source layer's first copy keeps its moments."""
    fam = family(src.family)
    out: LazyState = {}
    layer_suffixes: list[str] = []
    for key in ctx.weight_map(src):
        split = fam.split_layer_key(key)
        if split is None:
            out[key] = state[key]
        elif split[0] == 0:
            layer_suffixes.append(split[1])
    first: dict[int, int] = {}
    for i, s in enumerate(sources):
        first.setdefault(s, i)
        for suffix in layer_suffixes:
            thunk = state[fam.layer_key(s, suffix)]
            residual = any(suffix.startswith(m + ".") for m in fam.residual_out)
            if (i in zeroed and residual) or (ctx.kind == "transfer" and first[s] != i):
                thunk = functools.partial(_zeros_like, thunk)
            out[fam.layer_key(i, suffix)] = thunk
    return out


def _zeros_like(thunk: Thunk) -> torch.Tensor:
    return torch.zeros_like(thunk())
