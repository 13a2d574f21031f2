"""Lark parse tree -> `growdsl.ast`: one method per grammar rule, no checks here."""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from growdsl import ast
from growdsl.source import Span


def span_of(meta: Meta | Token) -> Span:
    """The span of a rule (its meta) or of a token.

    >>> span_of(Token("NAME", "lr", line=2, column=3, end_line=2, end_column=5))
    Span(line=2, col=3, end_line=2, end_col=5)
    """
    if isinstance(meta, Token):
        return Span(line=meta.line or 0, col=meta.column or 0,
                    end_line=meta.end_line or 0, end_col=meta.end_column or 0)
    if getattr(meta, "empty", True):
        return Span(line=0, col=0, end_line=0, end_col=0)
    return Span(line=meta.line, col=meta.column, end_line=meta.end_line, end_col=meta.end_column)


@v_args(meta=True, inline=True)
class ToAst(Transformer[Token, ast.File]):
    """Builds the AST bottom up; each method mirrors one rule of grammars/grow.lark."""

    def start(self, meta: Meta, *statements: ast.Statement) -> ast.File:
        return ast.File(statements=tuple(statements), span=span_of(meta))

    def model(self, meta: Meta, preset: Token, args: tuple[ast.Arg, ...] | None,
              _from: Token | None, config: Token | None) -> ast.ModelDecl:
        cfg = ast.String(text=str(config), span=span_of(config)) if config else None
        return ast.ModelDecl(preset=str(preset), args=args, config=cfg, span=span_of(meta),
                             preset_span=span_of(preset))

    def init(self, meta: Meta, _from: Token, path: Token) -> ast.InitDecl:
        return ast.InitDecl(path=ast.String(text=str(path), span=span_of(path)), span=span_of(meta))

    def train(self, meta: Meta, *items: ast.Item) -> ast.TrainDecl:
        return ast.TrainDecl(items=tuple(items), span=span_of(meta))

    def sweep(self, meta: Meta, *items: ast.Item) -> ast.SweepDecl:
        return ast.SweepDecl(items=tuple(items), span=span_of(meta))

    def stage(self, meta: Meta, length: tuple[ast.Expr, str | None], *rest: Any) -> ast.StageDecl:
        growth = rest[-1] if rest and isinstance(rest[-1], ast.GrowthDecl | type(None)) else None
        items = tuple(r for r in rest if isinstance(r, ast.Item))
        return ast.StageDecl(length=length[0], unit=length[1], items=items, growth=growth,
                             span=span_of(meta))

    def length(self, meta: Meta, expr: ast.Expr, unit: Token | None) -> tuple[ast.Expr, str | None]:
        return expr, (str(unit) if unit else None)

    def growth(self, meta: Meta, *parts: Any) -> ast.GrowthDecl:
        ops = tuple(p for p in parts if isinstance(p, ast.OpDecl))
        items = tuple(p for p in parts if isinstance(p, ast.Item))
        preserve = any(p == "preserve" for p in parts if isinstance(p, str))
        return ast.GrowthDecl(ops=ops, items=items, preserve=preserve, span=span_of(meta))

    def settings(self, meta: Meta, *items: ast.Item) -> tuple[ast.Item, ...]:
        return items

    def ops(self, meta: Meta, *parts: Any) -> ast.GrowthDecl:
        return self.growth(meta, *parts)

    def preserve(self, meta: Meta) -> str:
        return "preserve"

    def op(self, meta: Meta, name: Token, args: tuple[ast.Arg, ...] | None) -> ast.OpDecl:
        return ast.OpDecl(name=str(name), args=args, span=span_of(meta), name_span=span_of(name))

    def limit(self, meta: Meta, kind: Token, metric: Token, cmp: Token,
              value: ast.Expr) -> ast.LimitDecl:
        return ast.LimitDecl(kind=str(kind), metric=str(metric), cmp=str(cmp), value=value,
                             span=span_of(meta), metric_span=span_of(metric))

    def scratch(self, meta: Meta, length: tuple[ast.Expr, str | None]) -> ast.ScratchDecl:
        return ast.ScratchDecl(length=length[0], unit=length[1], span=span_of(meta))

    def item(self, meta: Meta, key: Token, value: ast.Value) -> ast.Item:
        return ast.Item(key=str(key), value=value, span=span_of(meta), key_span=span_of(key))

    def positional(self, meta: Meta, value: ast.Value) -> ast.Positional:
        return ast.Positional(value=value, span=span_of(meta))

    def call_args(self, meta: Meta, *args: ast.Arg | None) -> tuple[ast.Arg, ...]:
        return tuple(a for a in args if a is not None)

    def string(self, meta: Meta, token: Token) -> ast.String:
        return ast.String(text=str(token), span=span_of(meta))

    def tup(self, meta: Meta, *items: ast.Value | None) -> ast.Tuple:
        return ast.Tuple(items=tuple(i for i in items if i is not None), span=span_of(meta))

    def number(self, meta: Meta, token: Token) -> ast.Number:
        return ast.Number(text=str(token), span=span_of(meta))

    def symbol(self, meta: Meta, token: Token) -> ast.Symbol:
        return ast.Symbol(name=str(token), span=span_of(meta))

    def call(self, meta: Meta, name: Token, args: tuple[ast.Arg, ...]) -> ast.Call:
        return ast.Call(name=str(name), args=args, span=span_of(meta))

    def neg(self, meta: Meta, operand: ast.Expr) -> ast.Neg:
        return ast.Neg(operand=operand, span=span_of(meta))

    def _bin(self, op: str, meta: Meta, left: ast.Expr, right: ast.Expr) -> ast.BinOp:
        return ast.BinOp(op=op, left=left, right=right, span=span_of(meta))

    def add(self, meta: Meta, left: ast.Expr, right: ast.Expr) -> ast.BinOp:
        return self._bin("+", meta, left, right)

    def sub(self, meta: Meta, left: ast.Expr, right: ast.Expr) -> ast.BinOp:
        return self._bin("-", meta, left, right)

    def mul(self, meta: Meta, left: ast.Expr, right: ast.Expr) -> ast.BinOp:
        return self._bin("*", meta, left, right)

    def div(self, meta: Meta, left: ast.Expr, right: ast.Expr) -> ast.BinOp:
        return self._bin("/", meta, left, right)
