"""`masked`: masked structural growth (MSG: Yao et al., ICLR 2024). New layers (copies of
layer i mod L, as in stacking) are gated `h + c (Block(h) - h)`; new FFN units (freshly
drawn, N(0, 0.02)) have their activations multiplied by c; c = 0 at growth and ramps to 1
(`backend.treatments`). Exact at growth for any new weights, post-LN BERT included.
Optimizer moments of new FFN units start at zero.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

import torch

from growdsl.backend.families import Axes
from growdsl.backend.surgery.core import Ctx, LazyState, Thunk, relayer
from growdsl.ir import ArgValue
from growdsl.shapes import Shape

INIT_STD = 0.02


def mask_for(src: Shape, dst: Shape, ramp: int) -> dict[str, Any]:
    """The gate description stored in `config.growdsl["mask"]`: the layers and FFN units
    new in `dst`, masked by c = 0 ramping to 1 over `ramp` steps."""
    return {"layers": list(range(src.layers, dst.layers)),
            "ffn_from": src.ffn_stored if dst.ffn_stored > src.ffn_stored else None,
            "c": 0.0, "ramp": ramp}


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    deeper = src.replace(layers=dst.layers)
    if dst.layers > src.layers:
        state = relayer(state, src, [i % src.layers for i in range(dst.layers)], set(), ctx)
    if dst.ffn_stored == src.ffn_stored:
        return state
    out = dict(state)
    for key, axes in ctx.weight_map(deeper).items():
        if any(space == "F" for space, _ in axes):
            out[key] = functools.partial(_fresh, state[key], axes, dst.ffn_stored, key, ctx)
    return out


def _fresh(thunk: Thunk, axes: Axes, new: int, key: str, ctx: Ctx) -> torch.Tensor:
    t = thunk()
    axis = next(i for i, (space, _) in enumerate(axes) if space == "F")
    shape = list(t.shape)
    shape[axis] = new - t.shape[axis]
    if ctx.kind == "weight" and t.dim() > 1:
        gen = ctx.generator(zlib.crc32(key.encode()))
        extra = torch.randn(shape, generator=gen, dtype=torch.float32) * INIT_STD
    else:
        extra = torch.zeros(shape)
    return torch.cat([t, extra.to(t.dtype)], dim=axis)
