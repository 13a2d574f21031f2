"""`clone`: uniform integer cloning of hidden, heads and FFN (HyperCloning: Samragh et al.,
2024): `W' = W.repeat(k_out, k_in) / k_in`, norms repeated, tied head scaled 1/k through
the final norm. Exact.
"""

from __future__ import annotations

from growdsl.backend.surgery.core import Ctx, LazyState, widen
from growdsl.backend.surgery.width import width_maps
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    return widen(state, src, width_maps(src, dst, "uniform", ctx), ctx)
