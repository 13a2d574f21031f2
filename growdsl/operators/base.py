"""The static half of a growth operator: its arguments, shape rule and preservation verdict.

The planner calls `apply` and `verdict`; the backend's tensor half (growdsl.backend.surgery)
implements the same operator on weights, and a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from growdsl.ir import ArgValue
from growdsl.shapes import Shape

EXACT = "exact"
APPROXIMATE = "approximate"
NONE = "none"

# How a verdict reads in a sentence ("stack: exact", "aki: not preserving"): `none` alone
# reads as "no operators".
VERDICT_WORDS = {EXACT: "exact", APPROXIMATE: "approximate", NONE: "not preserving"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Param:
    """One operator argument: its type (int, float, str, bool), default and allowed words."""

    type: type
    default: ArgValue | None = None
    choices: tuple[str, ...] = ()
    minimum: int = 0          # for int arguments
    doc: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """Whether an operator preserves the function for given shapes: exact, approximate or
    none, and why."""

    kind: str
    reason: str


class ShapeError(Exception):
    """An operator cannot turn `src` into the requested shape; message and hint for the user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Operator(Protocol):
    """A growth operator. `apply` moves the dimensions it owns from `src` to their values in
    `dst` (the next stage's shape) and returns the result, or raises `ShapeError`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str]
    params: ClassVar[dict[str, Param]]
    dims: ClassVar[tuple[str, ...]]     # Shape fields this operator may change

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape: ...

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict: ...
