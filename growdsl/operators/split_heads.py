"""`split_heads`: more, smaller heads at a fixed attention width.

Discussed as a head-count growth in bert2BERT (Chen et al., ACL 2022) and CompoundGrow's
"fewer heads" treatment (Gu et al., NAACL 2021). Splitting a head of size d into heads of
size d/k changes the softmax temperature 1/sqrt(d) and which units attend together: not
function-preserving.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl.ir import ArgValue
from growdsl.operators._common import grows, needs_change
from growdsl.operators.base import NONE, Operator, Param, ShapeError, Verdict
from growdsl.shapes import Shape


class SplitHeads(Operator):
    """heads x head_dim stays the same; heads grow, the head size shrinks."""

    name: ClassVar[str] = "split_heads"
    summary: ClassVar[str] = "split heads into more, smaller heads (attention width fixed)"
    paper: ClassVar[str] = "Gu et al., NAACL 2021; Chen et al., ACL 2022"
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]] = ("heads", "kv_heads", "head_dim")
    preserve_help: ClassVar[dict[str, str]] = {
        NONE: "drop `preserve`, or use `fpi` with the head size kept"}

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        heads = grows(self.name, src, dst, "heads")
        kv_heads = grows(self.name, src, dst, "kv_heads")
        for what, old, new in (("attention", src.heads, heads),
                               ("key/value", src.kv_heads, kv_heads)):
            if new * dst.head_dim != old * src.head_dim:
                raise ShapeError(
                    f"`split_heads` keeps the {what} width {old} x {src.head_dim} = "
                    f"{old * src.head_dim}, but the next stage has {new} x {dst.head_dim} = "
                    f"{new * dst.head_dim}",
                    _width_hint(what, src, dst))
        out = src.replace(heads=heads, kv_heads=kv_heads, head_dim=dst.head_dim)
        needs_change(self.name, src, out, self.dims)
        return out

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        return Verdict(kind=NONE, reason=f"splitting {src.heads} heads of {src.head_dim} into "
                                         f"{dst.heads} of {dst.head_dim} changes the attention "
                                         f"temperature 1/sqrt({src.head_dim}) -> "
                                         f"1/sqrt({dst.head_dim})")


def _width_hint(what: str, src: Shape, dst: Shape) -> str:
    """How to keep the width: this stage's or the next stage's key/value head count."""
    if what == "attention":
        return "grow the hidden size with `fpi` or `clone`, which keep the head size"
    options = []
    kept = dst.kv_heads * dst.head_dim
    if kept % src.head_dim == 0 and src.heads % max(kept // src.head_dim, 1) == 0:
        options.append(f"give this stage kv_heads={kept // src.head_dim}")
    if src.kv_heads * src.head_dim % dst.head_dim == 0:
        options.append(f"give the next stage kv_heads={src.kv_heads * src.head_dim // dst.head_dim}")
    return (" or ".join(options) or "keep the key/value width") + \
        ": key/value heads split like the query heads"
