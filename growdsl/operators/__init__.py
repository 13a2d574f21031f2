"""The growth operators' static halves, an explicit registry, and the function that walks a
growth step through them.

`REGISTRY` maps each operator's name to its instance (see `base.Operator`). `apply_growth`
applies a step's operators in order, each to the shape the previous one produced, and
returns every operator's before/after shapes and verdict; the planner and the backend both
use it, so they agree on every intermediate shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from growdsl.ir import ArgValue, Growth, OpCall
from growdsl.operators.aki import Aki
from growdsl.operators.base import APPROXIMATE, EXACT, NONE, Operator, ShapeError, Verdict
from growdsl.operators.clone import Clone
from growdsl.operators.extend import Extend
from growdsl.operators.fpi import Fpi
from growdsl.operators.identity import Identity
from growdsl.operators.interleave import Interleave
from growdsl.operators.masked import Masked
from growdsl.operators.split_heads import SplitHeads
from growdsl.operators.stack import Stack
from growdsl.operators.unfactor import Unfactor
from growdsl.operators.unpool import Unpool
from growdsl.operators.unshare import Unshare
from growdsl.shapes import Shape

__all__ = ["REGISTRY", "GrowthStepError", "OpResult", "apply_growth", "resolve_args",
           "step_verdict", "structural_diff"]

_OPERATORS: tuple[Operator, ...] = (
    Stack(), Interleave(), Identity(), Masked(), Fpi(), Aki(), Clone(), SplitHeads(),
    Unshare(), Unfactor(), Unpool(), Extend(),
)
REGISTRY: dict[str, Operator] = {op.name: op for op in _OPERATORS}

# Shape fields a stage may change without any operator: they shape the data, not the
# weights (the sequence length, bert2BERT's sub-model count).
TRAINING_ONLY = ("seq", "submodels")



@dataclass(frozen=True, kw_only=True, slots=True)
class OpResult:
    """One operator of a growth step, walked: its call, the shape before and after it, and
    its verdict for those shapes."""

    call: OpCall
    before: Shape
    after: Shape
    verdict: Verdict


_RANK = {EXACT: 0, APPROXIMATE: 1, NONE: 2}


class GrowthStepError(ShapeError):
    """A `ShapeError` raised by operator number `index` (`call`) of a growth step."""

    def __init__(self, error: ShapeError, index: int, call: OpCall) -> None:
        super().__init__(error.message, error.hint)
        self.index = index
        self.call = call


def structural_diff(a: Shape, b: Shape) -> list[str]:
    """The weight-bearing fields on which `a` and `b` differ (training-only fields, the
    pooling mode of an unpooled model and the carried config `settings` left out)."""
    skip = set(TRAINING_ONLY)
    if a.pool == 1 and b.pool == 1:
        skip.add("pool_mode")
    return [f.name for f in dataclasses.fields(Shape)
            if f.compare and f.name not in skip and getattr(a, f.name) != getattr(b, f.name)]


def resolve_args(op: Operator, args: dict[str, ArgValue]) -> dict[str, ArgValue]:
    """`args` with the operator's defaults filled in (required arguments stay absent)."""
    full = {k: p.default for k, p in op.params.items() if p.default is not None}
    full.update(args)
    return full


def apply_growth(src: Shape, dst: Shape, growth: Growth) -> tuple[Shape, list[OpResult]]:
    """Apply `growth.ops` in order from `src` towards `dst`.

    Returns the final shape (the caller compares it with `dst`) and, per operator, its
    call, the shape before and after it, and its verdict. Raises `GrowthStepError` for the
    first operator that cannot apply (an unknown name included).
    """
    shape = src
    results: list[OpResult] = []
    for index, call in enumerate(growth.ops):
        op = REGISTRY.get(call.name)
        if op is None:
            raise GrowthStepError(ShapeError(f"unknown operator `{call.name}`"), index, call)
        args = resolve_args(op, call.args)
        try:
            after = op.apply(shape, dst, args)
        except ShapeError as err:
            raise GrowthStepError(err, index, call) from err
        results.append(OpResult(call=call, before=shape, after=after,
                                verdict=op.verdict(shape, after, args)))
        shape = after
    return shape, results


def step_verdict(verdicts: list[Verdict]) -> Verdict:
    """The verdict of a whole growth step: its weakest operator's (exact with no ops)."""
    if not verdicts:
        return Verdict(kind=EXACT, reason="no operator: the weights carry over unchanged")
    worst = max(verdicts, key=lambda v: _RANK[v.kind])
    return worst
