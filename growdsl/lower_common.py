"""What every part of the lowering shares: the one error collector, and readers of the
values that several blocks take (quoted strings, words, booleans, the target's symbols).

Each block's lowering (`lower_model`, `lower_train`, `lower_stages`, `lower_ops`) records
its mistakes on the `Collector` it is given and goes on; `Collector.raise_if_any` raises
them all together, in source order, once the whole file is lowered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any, TypeVar

from growdsl import ast
from growdsl.errors import Diagnostic, GrowError, did_you_mean
from growdsl.evaluate import EvalError
from growdsl.ir import SpecPath
from growdsl.keys import BOOLEANS, SYMBOLS
from growdsl.shapes import Shape
from growdsl.source import Source

T = TypeVar("T")


class Collector:
    """The diagnostics of one lowering: every mistake recorded, all raised at the end."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, span: Any, help: str | None = None) -> None:
        """Record a mistake."""
        self.diagnostics.append(Diagnostic(code=code, message=message, span=span, help=help))

    def add(self, diagnostic: Diagnostic) -> None:
        """Record an already built diagnostic (e.g. an `EvalError`'s)."""
        self.diagnostics.append(diagnostic)

    def attempt(self, fn: Callable[[], T], default: T) -> T:
        """Run `fn`; an EvalError is recorded and `default` returned."""
        try:
            return fn()
        except EvalError as exc:
            self.diagnostics.append(exc.diagnostic)
            return default

    def once(self, items: Iterable[ast.Item], field_of: Callable[[str], str]) -> list[ast.Item]:
        """`items` less those setting a field already set (each reported as E210)."""
        first: dict[str, ast.Item] = {}
        kept = []
        for item in items:
            field = field_of(item.key)
            if field in first:
                earlier = first[field]
                self.error("E210", f"`{item.key}` is set twice", item.key_span,
                           f"`{earlier.key}` was already set at line {earlier.span.line}")
                continue
            first[field] = item
            kept.append(item)
        return kept

    def raise_if_any(self) -> None:
        """Raise GrowError with every recorded diagnostic, in source order, if there is one."""
        if self.diagnostics:
            ordered = sorted(self.diagnostics, key=lambda d: (d.span.line, d.span.col))
            raise GrowError([dataclasses.replace(d, source=self.source) for d in ordered])

    def word(self, node: ast.Value, key: str, choices: tuple[str, ...]) -> str | None:
        """`node` as one of `choices` (a bare word), or None with E306 recorded."""
        if isinstance(node, ast.Symbol) and node.name in choices:
            return node.name
        shown = node.name if isinstance(node, ast.Symbol) else None
        self.error("E306", f"`{key}` must be one of {', '.join(choices)}"
                   + (f"; got `{shown}`" if shown else ""), node.span,
                   did_you_mean(shown, choices) if shown else None)
        return None

    def path(self, node: ast.String) -> SpecPath:
        """A quoted path of the spec, resolved against the spec's folder (the one place the
        IR's paths are resolved)."""
        return SpecPath.resolve(unquote(node.text), self.source.directory)

    def boolean(self, node: ast.Value, key: str) -> bool | None:
        """`true` / `false`, or None with E306 recorded."""
        word = self.word(node, key, tuple(BOOLEANS))
        return BOOLEANS[word] if word else None


def unquote(text: str) -> str:
    r"""A string token's value: `\"` and `\\` are escapes, other backslashes are kept.

    >>> unquote('"data/corpus.txt"')
    'data/corpus.txt'
    >>> print(unquote(r'"c:\data \"x\""'))
    c:\data "x"
    """
    body = text[1:-1] if text.startswith('"') else text
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


def target_env(shape: Shape) -> dict[str, Fraction]:
    """Symbol values for expressions: the target model's dimensions.

    >>> from growdsl.shapes import PRESETS
    >>> env = target_env(PRESETS["bert-base"])
    >>> env["L"], env["D"], env["ffn"]
    (Fraction(12, 1), Fraction(768, 1), Fraction(3072, 1))
    """
    return {sym: Fraction(getattr(shape, field)) for sym, field in SYMBOLS.items()}
