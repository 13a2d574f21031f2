"""`masked`: masked structural growth (MSG).

Yao et al., ICLR 2024 ("Masked Structural Growth for 2x Faster Language Model
Pre-training"): new layers and FFN units are multiplied by a mask that is 0 at growth and
ramps to 1 over `ramp` steps, so the function is preserved at the moment of growth for any
new weights, post-LN BERT included.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._common import grows, needs_change, width_unshared
from growdsl.operators.base import EXACT, Operator, Param, ShapeError, Verdict
from growdsl.shapes import Shape


class Masked(Operator):
    """Grows layers and/or FFN units behind a mask ramping from 0 to 1."""

    name: ClassVar[str] = "masked"
    summary: ClassVar[str] = "add layers / FFN units behind a mask ramping from 0 to 1"
    paper: ClassVar[str] = "Yao et al., ICLR 2024 (MSG)"
    params: ClassVar[dict[str, Param]] = {
        "ramp": Param(type=int, default=None, minimum=1,
                      doc="steps over which the mask goes 0 -> 1 (>= 1, within the next stage)"),
    }
    dims: ClassVar[tuple[str, ...]] = ("layers", "ffn")
    mask_ramp: ClassVar[str | None] = "ramp"

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        ramp = args.get("ramp")
        if ramp is None:
            raise ShapeError("`masked` needs `ramp`: the steps over which the mask goes 0 -> 1",
                             "write e.g. `masked(ramp=10k)`")
        if not isinstance(ramp, int) or isinstance(ramp, bool) or ramp <= 0:
            raise ShapeError(f"`ramp` must be a whole number >= 1, got {ramp}: the mask goes "
                             "0 -> 1 over at least one step",
                             "write e.g. `masked(ramp=10k)`")
        out = src.replace(layers=grows(self.name, src, dst, "layers"),
                          ffn=grows(self.name, src, dst, "ffn"))
        width_unshared(self.name, src, out)
        needs_change(self.name, src, out, self.dims)
        return out

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        ramp = args.get("ramp")
        return Verdict(kind=EXACT, reason=f"new units are masked to 0 at growth (mask ramps "
                                          f"to 1 over {ramp} steps)")
