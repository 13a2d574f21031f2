"""`clone`: uniform integer cloning of every width dimension.

HyperCloning (Samragh et al., 2024, "Scaling Smart: Accelerating Large Language Model
Pre-training with Small Model Initialization"): W' = W.repeat(k_out, k_in) / k_in,
normalization weights repeated, heads x k with the head size fixed, the tied output head
scaled 1/k. Exact.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._common import factor
from growdsl.operators._width import WIDTH_DIMS, grow_width
from growdsl.operators.base import EXACT, Operator, Param, Verdict
from growdsl.shapes import Shape


class Clone(Operator):
    """Every width dimension grows by an integer factor, each unit copied uniformly."""

    name: ClassVar[str] = "clone"
    summary: ClassVar[str] = "uniform integer cloning of hidden, heads and FFN"
    paper: ClassVar[str] = "Samragh et al., 2024 (HyperCloning)"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = WIDTH_DIMS

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        out = grow_width(self.name, src, dst)
        for d in WIDTH_DIMS:
            factor(self.name, d, getattr(src, d), getattr(out, d))
        return out

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        k = dst.hidden // max(src.hidden, 1)
        tied = f"; tied output head scaled 1/{k}" if src.tied and k > 1 else ""
        grown = ", ".join(f"{d} x{getattr(dst, d) // max(getattr(src, d), 1)}" for d in WIDTH_DIMS
                          if getattr(dst, d) != getattr(src, d))
        return Verdict(kind=EXACT, reason=f"uniform cloning ({grown}) copies every unit the "
                                          f"same number of times{tied}")
