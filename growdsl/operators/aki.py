"""`aki`: advanced knowledge initialization (bert2BERT).

Chen et al., ACL 2022: like FPI, but the new units of layer l are taken from the
in-expanded weights of layer l+1 (the top layer uses plain FPI). This breaks the symmetry
between copies and converges faster, and is NOT function-preserving, by design.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._width import WIDTH_DIMS, grow_width
from growdsl.operators.base import NONE, Operator, Param, Verdict
from growdsl.shapes import Shape


class Aki(Operator):
    """Width growth whose new units come from the next layer."""

    name: ClassVar[str] = "aki"
    summary: ClassVar[str] = "width growth with new units taken from the next layer"
    paper: ClassVar[str] = "Chen et al., ACL 2022 (bert2BERT AKI)"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = WIDTH_DIMS
    preserve_help: ClassVar[dict[str, str]] = {NONE: "drop `preserve`, or use `fpi`"}

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        return grow_width(self.name, src, dst)

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        return Verdict(kind=NONE, reason="AKI takes new units from the next layer's weights: "
                                         "not function-preserving, by design")
