"""`unpool`: remove CompoundGrow's embedding pooling.

Gu et al., NAACL 2021 (CompoundGrow, "length: embedding pooling"): the low-cost model
pools the first self-attention layer's queries by a window p, so every later layer runs on
T / p positions. Removing the pooling keeps every parameter but changes the function.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators.base import NONE, Param, ShapeError, Verdict
from growdsl.shapes import Shape


class Unpool:
    """pool p -> 1 (or to a divisor of p); parameters carry over unchanged."""

    name: ClassVar[str] = "unpool"
    summary: ClassVar[str] = "remove embedding pooling (window -> 1)"
    paper: ClassVar[str] = "Gu et al., NAACL 2021 (CompoundGrow)"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = ("pool", "pool_mode")

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        old, new = src.pool, dst.pool
        if old <= 1:
            raise ShapeError("`unpool` needs a stage with pooling, but this one has none",
                             "drop `unpool`, or give the previous stage `pool=p`")
        if new >= old or old % new:
            raise ShapeError(f"`unpool` lowers the pooling window to a divisor, but the next "
                             f"stage has pool {old} -> {new}",
                             "the next stage usually has no pooling (pool=1)")
        return src.replace(pool=new, pool_mode=dst.pool_mode)

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        return Verdict(kind=NONE, reason=f"removing {src.pool_mode} pooling {src.pool} -> "
                                         f"{dst.pool} changes the function: later layers see about "
                                         f"{src.pool // max(dst.pool, 1)}x more positions")
