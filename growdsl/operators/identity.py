"""`identity`: function-preserving depth growth with zero-initialized residual branches.

LLaMA-Pro (Wu et al., ACL 2024, "LLaMA Pro: Progressive LLaMA with Block Expansion"):
a copied block whose attention output projection and FFN down projection are zero adds
nothing to a pre-LN residual stream. Post-LN BERT renormalizes after the residual sum,
so this is refused for it (use `masked`).
"""

from __future__ import annotations

from typing import ClassVar

from growdsl import families
from growdsl.ir import ArgValue
from growdsl.operators._common import grows, needs_change
from growdsl.operators.base import EXACT, Operator, Param, ShapeError, Verdict
from growdsl.shapes import Shape


class Identity(Operator):
    """New layers are copies with zeroed residual outputs, appended on top or one inserted
    after every group of L / n layers."""

    name: ClassVar[str] = "identity"
    summary: ClassVar[str] = "add layers whose residual branches start at zero (pre-LN only)"
    paper: ClassVar[str] = "Wu et al., ACL 2024 (LLaMA Pro block expansion)"
    params: ClassVar[dict[str, Param]] = {
        "where": Param(type=str, default="append", choices=("append", "interleave"),
                       doc="new layers on top, or one after every group of layers"),
    }
    dims: ClassVar[tuple[str, ...]] = ("layers",)
    shard_local: ClassVar[bool] = True

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        if not families.get(src.family).pre_ln:
            raise ShapeError(
                f"`identity` needs a pre-LN model, but {src.family} is post-LN: "
                "a zeroed block is still followed by LayerNorm",
                "use `masked` (a gate ramping from 0) for function-preserving depth growth",
            )
        new = grows(self.name, src, dst, "layers")
        added = new - src.layers
        if args["where"] == "interleave" and added and src.layers % added:
            raise ShapeError(
                f"`identity(where=interleave)` adds {added} layers to {src.layers}, "
                f"which does not split into equal groups",
                f"add a number of layers that divides {src.layers}, or use where=append",
            )
        out = src.replace(layers=new)
        needs_change(self.name, src, out, self.dims)
        return out

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        return Verdict(kind=EXACT, reason=f"{dst.layers - src.layers} new pre-LN layers with "
                                          "zeroed attention output and FFN down projections "
                                          "add nothing to the residual stream")
