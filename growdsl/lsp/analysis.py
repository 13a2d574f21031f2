"""One pass of the compiler over an editor's buffer: the same parse, lowering and planner
passes as `growdsl check`, stopped at the first phase that fails, keeping what each phase
built (the AST, the plan, the stage graph) for hover, completion and go-to-definition.

Positions here are the compiler's (1-based line and column); `growdsl.lsp.server` converts
to and from the protocol's 0-based ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from growdsl import ast
from growdsl.checks import analyse
from growdsl.driver import read_configs
from growdsl.errors import Diagnostic, GrowError
from growdsl.ir import Plan
from growdsl.lower import lower
from growdsl.parser import parse
from growdsl.source import Source, Span

if TYPE_CHECKING:
    from growdsl.plan import StageGraph


@dataclass(frozen=True, kw_only=True, slots=True)
class Analysis:
    """What the compiler made of one buffer: each phase's result, None past a failure."""

    source: Source
    file: ast.File | None = None
    plan: Plan | None = None
    graph: StageGraph | None = None
    diagnostics: tuple[Diagnostic, ...] = field(default=())


def analyse_text(text: str, path: str) -> Analysis:
    """Parse, lower and check `text` as the file at `path` (relative paths in it are read
    from that file's directory, as `growdsl check` reads them)."""
    source = Source(path=path, text=text)
    try:
        file = parse(source)
    except GrowError as error:
        return Analysis(source=source, diagnostics=error.diagnostics)
    try:
        plan = lower(file, source, read_configs(file, source))
    except GrowError as error:
        return Analysis(source=source, file=file, diagnostics=error.diagnostics)
    graph, found = analyse(plan)
    return Analysis(source=source, file=file, plan=plan, graph=graph, diagnostics=tuple(found))


def contains(span: Span, line: int, col: int) -> bool:
    """Whether 1-based (`line`, `col`) lies in `span` (its end column included, so that a
    cursor just after a word still names it)."""
    if not span.line or (line, col) < (span.line, span.col):
        return False
    return (line, col) <= (span.end_line, span.end_col)


def nodes_at(node: object, line: int, col: int) -> Iterator[ast.Node]:
    """The AST nodes whose span holds the position, outermost first."""
    if isinstance(node, tuple):
        for child in node:
            yield from nodes_at(child, line, col)
        return
    if not isinstance(node, ast.Node):
        return
    if not isinstance(node, ast.File) and not contains(node.span, line, col):
        return
    yield node
    for f in dataclasses.fields(node):
        if f.name not in ("span", "comments"):
            yield from nodes_at(getattr(node, f.name), line, col)


def stage_index(file: ast.File, decl: ast.StageDecl) -> int:
    """The index `lower` gives the stage `decl` (its place among the file's stages)."""
    stages = [s for s in file.statements if isinstance(s, ast.StageDecl)]
    return next(i for i, s in enumerate(stages) if s is decl)
