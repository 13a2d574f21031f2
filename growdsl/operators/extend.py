"""`extend`: grow the position table (longer sequences).

The second phase of BERT's own schedule (Devlin et al., NAACL 2019: 128 then 512 tokens)
and CompoundGrow's data truncation (Gu et al., NAACL 2021): the learned position table
grows, new rows copied from the old ones or zero. Outputs on sequences no longer than the
old table are unchanged, which is what the `exact` verdict claims: the smaller model takes no
longer input, so there is nothing to compare there (growth-operators.md section 6's "longer
sequence: no" is about training on the new positions, which the verdict does not cover).
Rotary models (LLaMA and its kin) have no table: only the limit moves.
"""

from __future__ import annotations

from typing import ClassVar

from growdsl import families
from growdsl.ir import ArgValue
from growdsl.operators._common import grows, needs_change
from growdsl.operators.base import EXACT, Operator, Param, Verdict
from growdsl.shapes import Shape


class Extend(Operator):
    """positions P -> P': rows P .. P'-1 of the position table are new."""

    name: ClassVar[str] = "extend"
    summary: ClassVar[str] = "grow the position table to a longer maximum length"
    paper: ClassVar[str] = "Devlin et al., NAACL 2019; Gu et al., NAACL 2021"
    params: ClassVar[dict[str, Param]] = {
        "init": Param(type=str, default="copy", choices=("copy", "zero"),
                      doc="new position rows copy the old ones cyclically, or start at zero"),
    }
    dims: ClassVar[tuple[str, ...]] = ("positions",)

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        out = src.replace(positions=grows(self.name, src, dst, "positions"))
        needs_change(self.name, src, out, self.dims)
        return out

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        if families.get(src.family).positions == "rotary":
            return Verdict(kind=EXACT, reason=f"rotary positions have no table; the limit "
                                              f"{src.positions} -> {dst.positions} only moves")
        init = args["init"]
        return Verdict(kind=EXACT, reason=f"exact on inputs of at most {src.positions} tokens, "
                                          f"the only ones the smaller model takes; positions "
                                          f"{src.positions}-{dst.positions - 1} are new "
                                          f"({init}, never trained there): on longer inputs "
                                          "there is no old function to preserve")
