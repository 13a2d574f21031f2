"""`fpi`: function-preserving width growth (Net2Net mapping through the whole model).

bert2BERT's FPI (Chen et al., ACL 2022), built on Net2Net (Chen, Goodfellow & Shlens,
ICLR 2016): one growth map g for the whole residual stream, copied units' outgoing
weights divided by their copy counts, whole heads copied with the head size fixed.
Exact when every hidden unit gets the same number of copies (a whole multiple, mapping
auto); otherwise the normalization statistics shift and it is only approximate.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._width import WIDTH_DIMS, grow_width, norm_name
from growdsl.operators.base import APPROXIMATE, EXACT, Operator, Param, Verdict
from growdsl.shapes import Shape


class Fpi(Operator):
    """Net2Net width growth: hidden, heads, kv_heads and FFN copied through a map g."""

    name: ClassVar[str] = "fpi"
    summary: ClassVar[str] = "Net2Net width growth with one mapping for the residual stream"
    paper: ClassVar[str] = "Chen et al., ACL 2022 (bert2BERT FPI); Chen et al., ICLR 2016 (Net2Net)"
    params: ClassVar[dict[str, Param]] = {
        "mapping": Param(type=str, default="auto", choices=("auto", "random"),
                         doc="auto: uniform copies when a whole multiple, else random; random"),
    }
    dims: ClassVar[tuple[str, ...]] = WIDTH_DIMS
    preserve_help: ClassVar[dict[str, str]] = {
        APPROXIMATE: "use a whole-multiple width with `fpi(mapping=auto)` or `clone`, or drop "
                     "`preserve`"}

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        return grow_width(self.name, src, dst)

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        return width_verdict(src, dst, str(args["mapping"]))


def width_verdict(src: Shape, dst: Shape, mapping: str) -> Verdict:
    """The Net2Net verdict for a width change (shared by `fpi`)."""
    old, new = src.hidden, dst.hidden
    norm = norm_name(src)
    if new != old and mapping == "random":
        return Verdict(kind=APPROXIMATE, reason=f"mapping=random copies hidden units unevenly "
                                                f"({old} -> {new}), {norm} statistics shift")
    if new % max(old, 1):
        return Verdict(kind=APPROXIMATE, reason=f"hidden growth {old} -> {new} is not a whole "
                                                f"multiple, {norm} statistics shift")
    if new != old:
        k = new // max(old, 1)
        tied = "; tied output head scaled 1/" + str(k) if src.tied else ""
        return Verdict(kind=EXACT, reason=f"hidden {old} -> {new} copies every unit {k} times "
                                          f"with one mapping, {norm} statistics unchanged{tied}")
    parts = [f"{d} {getattr(src, d)} -> {getattr(dst, d)}" for d in ("ffn", "heads", "kv_heads")
             if getattr(src, d) != getattr(dst, d)]
    return Verdict(kind=EXACT, reason=", ".join(parts) + " copies units with their outgoing "
                                                         "weights divided by the copy counts")
