"""`stack`: depth growth by copying the layer stack.

Progressive stacking (Gong et al., ICML 2019, "Efficient Training of BERT by Progressively
Stacking") as used by CompoundGrow (Gu et al., NAACL 2021): new layer i <- layer i mod L.
bert2BERT (Chen et al., ACL 2022) stacks k = L'//L copies and fills a remainder of n
layers with the top n source layers (`remainder=top`).
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._common import grows, needs_change
from growdsl.operators.base import NONE, Operator, Param, Verdict
from growdsl.shapes import Shape


class Stack(Operator):
    """Layer i of the grown model copies layer i mod L (remainder: bottom) or, for the
    layers past k*L, the top layers (remainder: top)."""

    name: ClassVar[str] = "stack"
    summary: ClassVar[str] = "copy the layer stack to reach the next stage's depth"
    paper: ClassVar[str] = ("Gong et al., ICML 2019 (progressive stacking); Gu et al., NAACL 2021; "
                            "Chen et al., ACL 2022 (remainder=top)")
    params: ClassVar[dict[str, Param]] = {
        "remainder": Param(type=str, default="bottom", choices=("bottom", "top"),
                           doc="which source layers fill L' mod L leftover layers"),
    }
    dims: ClassVar[tuple[str, ...]] = ("layers",)
    shard_local: ClassVar[bool] = True
    preserve_help: ClassVar[dict[str, str]] = {
        NONE: "drop `preserve`, or use `identity` (pre-LN) or `masked`"}

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        out = src.replace(layers=grows(self.name, src, dst, "layers"))
        needs_change(self.name, src, out, self.dims)
        return out

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        old, new = src.layers, dst.layers
        k, rest = divmod(new, max(old, 1))
        how = f"{old} -> {new} layers is {k} whole copies"
        if rest:
            side = args["remainder"]
            which = f"layers 0-{rest - 1}" if side == "bottom" else f"layers {old - rest}-{old - 1}"
            how += f" plus {rest} more taken from the {side} ({which})"
        return Verdict(kind=NONE, reason=f"stacking changes the function ({how})")
