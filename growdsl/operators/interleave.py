"""`interleave`: depth growth placing each copy right after its source (0 0' 1 1' ...).

An alternative arrangement of the stacking of Gong et al. (ICML 2019), discussed with
CompoundGrow (Gu et al., NAACL 2021); needs the new depth to be a whole multiple.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._common import factor, grows, needs_change
from growdsl.operators.base import NONE, Operator, Param, Verdict
from growdsl.shapes import Shape


class Interleave(Operator):
    """Layer j of the source becomes layers j*k .. j*k+k-1 of the grown model."""

    name: ClassVar[str] = "interleave"
    summary: ClassVar[str] = "copy every layer k times in place (0 0' 1 1' ...)"
    paper: ClassVar[str] = "Gong et al., ICML 2019; Gu et al., NAACL 2021"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = ("layers",)
    shard_local: ClassVar[bool] = True
    preserve_help: ClassVar[dict[str, str]] = {NONE: "drop `preserve`, or use `masked`"}

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        new = grows(self.name, src, dst, "layers")
        factor(self.name, "layers", src.layers, new)
        out = src.replace(layers=new)
        needs_change(self.name, src, out, self.dims)
        return out

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        k = dst.layers // max(src.layers, 1)
        return Verdict(kind=NONE, reason=f"interleaving changes the function (each of the "
                                         f"{src.layers} layers applied {k} times in a row)")
