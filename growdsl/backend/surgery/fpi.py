"""`fpi`: bert2BERT's function-preserving initialization (Chen et al., ACL 2022), the
Net2Net core (Chen, Goodfellow & Shlens, ICLR 2016) applied with ONE map for the whole
residual stream: `W'[:, c] = W[:, g(c)] / C(g(c))` on consumed axes, copies on produced
ones. Exact for whole multiples with mapping=auto; approximate otherwise (norm statistics).
"""

from __future__ import annotations

from growdsl.backend.surgery.core import Ctx, LazyState, widen
from growdsl.backend.surgery.width import width_maps
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    return widen(state, src, width_maps(src, dst, str(args["mapping"]), ctx), ctx)
