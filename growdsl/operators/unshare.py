"""`unshare`: end CompoundGrow's FFN parameter sharing.

Gu et al., NAACL 2021 (CompoundGrow, "width: parameter sharing"): the low-cost model's FFN
stores d_ff / k units used k times; at growth W1 is tiled k times along its output units,
W2 tiled k times along its input units and divided by k. Uniform duplication: exact.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._common import lower_to_divisor
from growdsl.operators.base import EXACT, Operator, Param, Verdict
from growdsl.shapes import Shape


class Unshare(Operator):
    """ffn_share k -> 1 (or to a divisor of k): the shared FFN units become separate."""

    name: ClassVar[str] = "unshare"
    summary: ClassVar[str] = "tile a shared FFN into separate units (sharing factor -> 1)"
    paper: ClassVar[str] = "Gu et al., NAACL 2021 (CompoundGrow)"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = ("ffn_share",)

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        return src.replace(ffn_share=lower_to_divisor(self.name, src, dst, "ffn_share",
                                                      "FFN sharing", "width=ffn/4"))

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        k = src.ffn_share // max(dst.ffn_share, 1)
        return Verdict(kind=EXACT, reason=f"tiling the {src.ffn_stored} shared FFN units {k} "
                                          f"times, the down projection divided by {k}, computes "
                                          "the same FFN")
