"""`unfactor`: CompoundGrow's factorized FFN recovered (Gu et al., NAACL 2021, sec. 4.2):
each FFN matrix W ~= U V (Linear in -> r, then r -> out) becomes the dense W = U V, bias
kept. Exact at the moment of growth (up to float rounding). Optimizer moments of the
recovered matrices start at zero (the factors' moments do not map onto W's).
"""

from __future__ import annotations

import functools

import torch

from growdsl.backend.families import family
from growdsl.backend.surgery.core import Ctx, LazyState, Thunk
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    fam = family(src.family)
    modules = (*fam.ffn_in, fam.ffn_out)
    out: LazyState = {}
    for key in ctx.weight_map(src):
        split = fam.split_layer_key(key)
        module = next((m for m in modules if split and split[1].startswith(m + ".")), None)
        if split is None or module is None:
            out[key] = state[key]
            continue
        base = fam.layer_key(split[0], module)
        if split[1] == module + ".0.weight":
            out[base + ".weight"] = functools.partial(
                _product, state[base + ".0.weight"], state[base + ".1.weight"], fam.conv1d,
                ctx.kind)
        elif split[1] == module + ".1.bias":
            out[base + ".bias"] = state[key]
    return out


def _product(low: Thunk, high: Thunk, conv1d: bool, kind: str) -> torch.Tensor:
    u_OR, v_RI = high(), low()
    w_OI = u_OR @ v_RI if kind == "weight" else torch.zeros(u_OR.shape[0], v_RI.shape[1],
                                                           dtype=u_OR.dtype)
    return (w_OI.T if conv1d else w_OI).contiguous()
