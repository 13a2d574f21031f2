"""`unfactor`: recover a full FFN from its low-rank factorization.

Gu et al., NAACL 2021 (CompoundGrow, "width: matrix factorization"): each FFN matrix is
trained as U V with a small rank; at growth W = U V is exactly the same linear map.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators.base import EXACT, Operator, Param, ShapeError, Verdict
from growdsl.shapes import Shape


class Unfactor(Operator):
    """ffn_rank r -> 0: every factorized FFN matrix becomes the product U V."""

    name: ClassVar[str] = "unfactor"
    summary: ClassVar[str] = "multiply out a factorized FFN (rank -> full)"
    paper: ClassVar[str] = "Gu et al., NAACL 2021 (CompoundGrow)"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = ("ffn_rank",)

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        if src.ffn_rank <= 0:
            raise ShapeError("`unfactor` needs a stage with a factorized FFN, but this one has "
                             "a full FFN",
                             "drop `unfactor`, or give this stage a factorized FFN (e.g. `rank=64`)")
        if dst.ffn_rank != 0:
            raise ShapeError(f"`unfactor` makes the FFN full, but the next stage has rank "
                             f"{dst.ffn_rank}", "remove `rank=` from the next stage")
        return src.replace(ffn_rank=0)

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        return Verdict(kind=EXACT, reason=f"W = U V (rank {src.ffn_rank}) is the same linear map")
