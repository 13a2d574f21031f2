"""`aki`: bert2BERT's advanced knowledge initialization (Chen et al., ACL 2022).

Width grows as in FPI (same maps, consumed axes divided by copy counts), but the NEW units
that layer l produces are taken from layer l+1's grown weights (the top layer keeps plain
FPI). This breaks the symmetry between copies; not function-preserving, by design.
"""

from __future__ import annotations

import functools

import torch

from growdsl.backend.families import Axes, family
from growdsl.backend.surgery.core import Ctx, LazyState, Map, Thunk, widen
from growdsl.backend.surgery.width import width_maps
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    maps = width_maps(src, dst, "auto", ctx)
    base = widen(state, src, maps, ctx)
    fam = family(src.family)
    out = dict(base)
    for key, axes in ctx.weight_map(src).items():
        split = fam.split_layer_key(key)
        if split is None or split[0] + 1 >= src.layers:
            continue
        upper = base[fam.layer_key(split[0] + 1, split[1])]
        out[key] = functools.partial(_from_next, base[key], upper, axes, maps)
    return out


def _from_next(cur: Thunk, nxt: Thunk, axes: Axes, maps: dict[str, Map]) -> torch.Tensor:
    t, upper = cur().clone(), nxt()
    for axis, (space, role) in enumerate(axes):
        m = maps.get(space)
        if role != "o" or m is None or len(m.g) == m.old:
            continue
        new = torch.arange(m.old, len(m.g))
        t.index_copy_(axis, new, upper.index_select(axis, new))
    return t
