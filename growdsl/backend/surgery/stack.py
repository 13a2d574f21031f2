"""`stack`: progressive stacking (Gong et al., ICML 2019) as in CompoundGrow (Gu et al.,
NAACL 2021): new layer i <- layer i mod L (`remainder=bottom`). bert2BERT (Chen et al.,
ACL 2022) stacks k = L'//L whole copies and fills the n leftover layers with the TOP n
source layers (`remainder=top`). Not function-preserving.
"""

from __future__ import annotations

from growdsl.backend.surgery.core import Ctx, LazyState, relayer
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def sources(old: int, new: int, remainder: str) -> list[int]:
    """Source layer of every grown layer."""
    whole = (new // old) * old
    rest = new - whole
    tail = list(range(rest)) if remainder == "bottom" else list(range(old - rest, old))
    return [i % old for i in range(whole)] + tail


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    order = sources(src.layers, dst.layers, str(args["remainder"]))
    return relayer(state, src, order, set(), ctx)
