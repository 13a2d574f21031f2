"""`unpool`: remove CompoundGrow's embedding pooling.

Gu et al., NAACL 2021 (CompoundGrow, "length: embedding pooling"): the low-cost model
pools the first self-attention layer's queries by a window p, so every later layer runs on
T / p positions. Removing the pooling keeps every parameter but changes the function.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._common import lower_to_divisor
from growdsl.operators.base import NONE, Operator, Param, Verdict
from growdsl.shapes import Shape


class Unpool(Operator):
    """pool p -> 1 (or to a divisor of p); parameters carry over unchanged."""

    name: ClassVar[str] = "unpool"
    summary: ClassVar[str] = "remove embedding pooling (window -> 1)"
    paper: ClassVar[str] = "Gu et al., NAACL 2021 (CompoundGrow)"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = ("pool", "pool_mode")
    shard_local: ClassVar[bool] = True
    preserve_help: ClassVar[dict[str, str]] = {
        NONE: "drop `preserve`, or use no operator: removing pooling always changes the "
              "function"}

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        pool = lower_to_divisor(self.name, src, dst, "pool", "pooling", "pool=2")
        return src.replace(pool=pool, pool_mode=dst.pool_mode)

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        return Verdict(kind=NONE, reason=f"removing {src.pool_mode} pooling {src.pool} -> "
                                         f"{dst.pool} changes the function: later layers see about "
                                         f"{src.pool // max(dst.pool, 1)}x more positions")
