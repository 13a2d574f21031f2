"""The static half of a growth operator: its arguments, shape rule and preservation verdict.

The planner calls `apply` and `verdict`; the backend's tensor half (growdsl.backend.surgery)
implements the same operator on weights, and a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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


class Operator:
    """A growth operator's static half: everything the planner, the checks and the backend
    know about it. `apply` moves the dimensions it owns from `src` to their values in `dst`
    (the next stage's shape) and returns the result, or raises `ShapeError`.

    Each operator is a subclass in its own module setting the class attributes below (the
    defaults suit most); its tensor half is `growdsl.backend.surgery.<name>`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str]
    params: ClassVar[dict[str, Param]] = {}
    dims: ClassVar[tuple[str, ...]]     # Shape fields this operator may change
    # The `help:` of a `preserve` step that this operator breaks, by verdict kind
    # (checks.preservation); a kind not listed gets DEFAULT_PRESERVE_HELP.
    preserve_help: ClassVar[dict[str, str]] = {}
    # The argument naming the steps over which the new units' mask ramps 0 -> 1 (the
    # function is preserved while they are masked), or None for an unmasked operator.
    # checks.schedule keeps the ramp within the next stage; the backend gates the model.
    mask_ramp: ClassVar[str | None] = None
    # Its tensor half indexes no sharded dimension: under FSDP each rank grows its own
    # shards; a step with any other operator consolidates (backend.distributed).
    shard_local: ClassVar[bool] = False

    def apply(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Shape:
        raise NotImplementedError

    def verdict(self, src: Shape, dst: Shape, args: dict[str, ArgValue]) -> Verdict:
        raise NotImplementedError


DEFAULT_PRESERVE_HELP = "drop `preserve`, or use an exact operator"
