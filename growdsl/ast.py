"""The syntax tree of a `.grow` file: frozen dataclasses, each with the span it was written at.

Spans do not take part in equality, so a tree printed by `printer` and parsed again
compares equal to the original. Meaning (names, units, defaults) is `lower`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from growdsl.source import NO_SPAN, Span


@dataclass(frozen=True, kw_only=True, slots=True)
class Node:
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


# ---- values ----
@dataclass(frozen=True, kw_only=True, slots=True)
class Number(Node):
    text: str                      # as written: 200k, 1.5M, 1e-4


@dataclass(frozen=True, kw_only=True, slots=True)
class Symbol(Node):
    name: str                      # L, D, ffn, adamw, true, scratch ...


@dataclass(frozen=True, kw_only=True, slots=True)
class String(Node):
    text: str                      # with its quotes, as written


@dataclass(frozen=True, kw_only=True, slots=True)
class Neg(Node):
    operand: Expr


@dataclass(frozen=True, kw_only=True, slots=True)
class BinOp(Node):
    op: str                        # + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True, kw_only=True, slots=True)
class Call(Node):
    name: str
    args: tuple[Arg, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Tuple(Node):
    items: tuple[Value, ...]


Expr = Number | Symbol | Neg | BinOp | Call
Value = Expr | String | Tuple


# ---- settings and arguments ----
@dataclass(frozen=True, kw_only=True, slots=True)
class Item(Node):
    key: str
    value: Value
    key_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Positional(Node):
    value: Value


Arg = Item | Positional


# ---- statements ----
@dataclass(frozen=True, kw_only=True, slots=True)
class ModelDecl(Node):
    preset: str
    args: tuple[Arg, ...] | None = None
    config: String | None = None
    preset_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class InitDecl(Node):
    path: String


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainDecl(Node):
    items: tuple[Item, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class OpDecl(Node):
    name: str
    args: tuple[Arg, ...] | None = None
    name_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class GrowthDecl(Node):
    ops: tuple[OpDecl, ...]
    items: tuple[Item, ...] = ()
    preserve: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class StageDecl(Node):
    length: Expr
    unit: str | None = None        # steps | tokens; None means steps
    items: tuple[Item, ...] = ()
    growth: GrowthDecl | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitDecl(Node):
    kind: str                      # budget | expect
    metric: str
    cmp: str
    value: Expr
    metric_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class ScratchDecl(Node):
    length: Expr                   # the reference run's length (`scratch 1M steps`)
    unit: str | None = None        # steps | tokens; None means steps


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepDecl(Node):
    items: tuple[Item, ...]        # what `growdsl sweep` varies and within what budget


Statement = ModelDecl | InitDecl | TrainDecl | StageDecl | LimitDecl | ScratchDecl | SweepDecl


@dataclass(frozen=True, kw_only=True, slots=True)
class Comment(Node):
    text: str                      # from `#` to the end of the line


@dataclass(frozen=True, kw_only=True, slots=True)
class File(Node):
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
