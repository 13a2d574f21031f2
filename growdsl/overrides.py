"""`growdsl run --set KEY=VALUE`: command-line overrides of a spec's settings.

`KEY` is `train.NAME` (or a bare `NAME`: the `train { }` block) or `STAGE.NAME` for one
stage, named as the plan names it (`stage2`, or its `name=`). `VALUE` is written as in a
spec (`3e-4`, `10k`, `cosine`, `"data/other.txt"`). Each override is parsed with the
grammar's `item` rule and put into the syntax tree before lowering, so it is checked like
the spec's own settings; its mistakes are reported against the `--set` text.

>>> from growdsl.source import Source
>>> split_override("train.lr=3e-4")
('train', 'lr=3e-4')
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from growdsl import ast
from growdsl.driver import read_configs, read_source
from growdsl.errors import Diagnostic, GrowError
from growdsl.ir import Plan
from growdsl.lower import lower
from growdsl.parser import parse, parse_fragment
from growdsl.source import Source, Span


def split_override(text: str) -> tuple[str, str]:
    """(`train` or a stage name, `NAME=VALUE`) of one `--set` text; the second is a suffix
    of `text`, so columns in it map back to the text as typed."""
    key = text.partition("=")[0]
    scope, dot, name = key.rpartition(".")
    if not dot:
        return "train", text
    return scope.strip(), text[len(key) - len(name):]


def load_with_overrides(path: str | Path, sets: list[str]) -> tuple[Source, Plan]:
    """Read, parse, override and lower a spec (as `lower.load`, plus `sets`)."""
    source = read_source(path)
    file = parse(source)
    if not sets:
        return source, lower(file, source, read_configs(file, source))
    first_line = len(source.text.split("\n")) + 1
    file, placed = apply_overrides(file, sets, first_line)
    try:
        return source, lower(file, source, read_configs(file, source))
    except GrowError as error:
        raise GrowError([_attribute(d, source, placed) for d in error.diagnostics]) from None


def apply_overrides(file: ast.File, sets: list[str], first_line: int
                    ) -> tuple[ast.File, dict[int, Source]]:
    """`file` with each override's item set in its block (replacing the same key), and the
    line each override was parsed at mapped to a source naming it. Overrides are parsed at
    lines past the spec's last, so their diagnostics can be told apart."""
    placed: dict[int, Source] = {}
    statements = list(file.statements)
    for i, text in enumerate(sets):
        line = first_line + i
        shown = Source(path=f"--set {text}", text=text)
        scope, item_text = split_override(text)
        padded = Source(path=shown.path, text="\n" * (line - 1) + item_text)
        try:
            item = parse_fragment(padded, "item")
        except GrowError as error:
            raise GrowError([_attribute(d, shown, {line: shown}) for d in error.diagnostics]
                            ) from None
        assert isinstance(item, ast.Item)
        placed[line] = shown
        statements = _set(statements, scope, item, shown)
    return dataclasses.replace(file, statements=tuple(statements)), placed


def _set(statements: list[ast.Statement], scope: str, item: ast.Item,
         shown: Source) -> list[ast.Statement]:
    stages = [s for s in statements if isinstance(s, ast.StageDecl)]
    if scope == "train":
        at = next((i for i, s in enumerate(statements) if isinstance(s, ast.TrainDecl)), None)
        if at is None:
            return [ast.TrainDecl(items=(item,)), *statements]
        block = statements[at]
        assert isinstance(block, ast.TrainDecl)
        statements[at] = dataclasses.replace(block, items=_replace(block.items, item))
        return statements
    for index, stage in enumerate(stages):
        if scope in (f"stage{index + 1}", _name(stage)):
            at = statements.index(stage)
            statements[at] = dataclasses.replace(stage, items=_replace(stage.items, item))
            return statements
    names = ", ".join(f"`{_name(s) or f'stage{i + 1}'}`" for i, s in enumerate(stages))
    raise GrowError([Diagnostic(code="E213", message=f"no stage named `{scope}`", source=shown,
                                span=Span(line=1, col=1, end_line=1, end_col=len(scope) + 1),
                                help=f"write `train.KEY=VALUE` or `STAGE.KEY=VALUE` with one "
                                     f"of {names}")])


def _replace(items: tuple[ast.Item, ...], item: ast.Item) -> tuple[ast.Item, ...]:
    return (*(i for i in items if i.key != item.key), item)


def _name(stage: ast.StageDecl) -> str | None:
    item = next((i for i in stage.items if i.key == "name"), None)
    if item is not None and isinstance(item.value, ast.String):
        return item.value.text[1:-1]
    return None


def _attribute(d: Diagnostic, source: Source, placed: dict[int, Source]) -> Diagnostic:
    """A diagnostic located in an override, re-pointed at that override's own text."""
    shown = placed.get(d.span.line)
    if shown is None:
        return d if d.source is not None else dataclasses.replace(d, source=source)
    item_text = split_override(shown.text)[1]
    shift = len(shown.text) - len(item_text)
    span = Span(line=1, col=d.span.col + shift, end_line=1, end_col=d.span.end_col + shift)
    return dataclasses.replace(d, source=shown, span=span)
