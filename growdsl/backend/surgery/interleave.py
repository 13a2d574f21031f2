"""`interleave`: every layer copied k times in place, 0 0' 1 1' ... (Gong et al., ICML 2019;
Gu et al., NAACL 2021 compare it with appended stacking). Not function-preserving.
"""

from __future__ import annotations

from growdsl.backend.surgery.core import Ctx, LazyState, relayer
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    k = dst.layers // src.layers
    return relayer(state, src, [i // k for i in range(dst.layers)], set(), ctx)
