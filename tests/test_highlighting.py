"""Highlighting of `.grow` files: the TextMate grammar of the VS Code extension, run through
the engine VS Code uses (vscode-textmate + vscode-oniguruma, installed by `make editors`
from editors/vscode/package-lock.json), and the Pygments lexer found through its entry
point; both on every shipped spec, every token's scope checked against the parser's AST."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, String

from growdsl import ast
from growdsl.driver import read_source
from growdsl.keys import SYMBOLS
from growdsl.operators import REGISTRY
from growdsl.parser import parse
from growdsl.pygments_lexer import GrowLexer

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*/*.grow"))
VSCODE = REPO / "editors" / "vscode"
GRAMMAR = VSCODE / "syntaxes" / "grow.tmLanguage.json"


def _expected(path: Path) -> dict[tuple[int, int], str]:
    """(line, col) of each token the parser knows -> the scope it must have."""
    file = parse(read_source(path))
    want: dict[tuple[int, int], str] = {(c.span.line, c.span.col): "comment.line.number-sign"
                                        for c in file.comments}

    def walk(node: object) -> None:
        if isinstance(node, tuple):
            for child in node:
                walk(child)
            return
        if not isinstance(node, ast.Node):
            return
        at = (node.span.line, node.span.col)
        if isinstance(node, ast.Number):
            want[at] = "constant.numeric"
        elif isinstance(node, ast.String):
            want[at] = "string.quoted.double"
        elif isinstance(node, ast.OpDecl):
            want[(node.name_span.line, node.name_span.col)] = "entity.name.function.operator"
        elif isinstance(node, ast.ModelDecl):
            want[at] = "keyword.other.declaration"
            want[(node.preset_span.line, node.preset_span.col)] = "entity.name.type.preset"
        elif isinstance(node, ast.StageDecl | ast.TrainDecl | ast.InitDecl | ast.ScratchDecl):
            want[at] = "keyword.other.declaration"
        elif isinstance(node, ast.Item):
            want[(node.key_span.line, node.key_span.col)] = "variable.other.key"
        elif isinstance(node, ast.Symbol) and node.name in SYMBOLS:
            want[at] = "variable.language.symbol"
        for name in node.__slots__:
            if name != "span":
                walk(getattr(node, name))

    walk(file.statements)
    return want


@pytest.fixture(scope="module")
def textmate() -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (VSCODE / "node_modules" / "vscode-textmate").is_dir():
        pytest.skip("node or editors/vscode/node_modules missing: run `make editors` "
                    "(npm ci in editors/vscode) to test the TextMate grammar")
    out = subprocess.run([node, "test/tokenize.js", *map(str, SPECS)], cwd=VSCODE,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def test_textmate_scopes_of_every_shipped_spec(textmate: list[dict[str, Any]]) -> None:
    tokens = {(Path(t["file"]), t["line"], t["col"]): t for t in textmate}
    checked = 0
    for path in SPECS:
        for (line, col), scope in _expected(path).items():
            token = tokens.get((path, line, col))
            assert token is not None, (path.name, line, col, scope)
            assert f"{scope}.grow" in token["scopes"], (path.name, line, token)
            checked += 1
    assert checked > 500


def test_textmate_units_keywords_and_growth_arrows(textmate: list[dict[str, Any]]) -> None:
    by_text: dict[str, set[str]] = {}
    for t in textmate:
        by_text.setdefault(t["text"], set()).update(t["scopes"])
    assert "keyword.other.unit.grow" in by_text["k"]          # the k of 200k
    assert "keyword.operator.growth.grow" in by_text["->"]
    assert "keyword.other.declaration.grow" in by_text["budget"]
    assert "keyword.operator.comparison.grow" in by_text["<="]
    assert "keyword.other.grow" in by_text["from"]


def test_textmate_grammar_names_the_languages_operators_and_symbols() -> None:
    """The grammar lists operators and symbols by hand: they must be the registry's."""
    repo = json.loads(GRAMMAR.read_text())["repository"]
    growth = repo["growth"]["match"]
    ops = set(growth[growth.index("(", 5) + 1: growth.index(")\\b")].split("|"))
    assert ops == set(REGISTRY)
    sym = repo["symbol"]["match"]
    assert set(sym[sym.index("(") + 1: sym.index(")")].split("|")) == {*SYMBOLS, "scratch"}


def test_pygments_lexer_is_found_by_name_and_file_name() -> None:
    assert isinstance(get_lexer_by_name("grow"), GrowLexer)
    assert isinstance(get_lexer_for_filename("plan.grow"), GrowLexer)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_pygments_tokens_of_a_shipped_spec(path: Path) -> None:
    text = path.read_text()
    tokens = list(GrowLexer().get_tokens_unprocessed(text))
    assert not [t for t in tokens if t[1] is Error]
    lines = text.split("\n")
    offsets = [sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))]
    kinds = {pos: kind for pos, kind, _ in tokens}
    family = {"comment.line.number-sign": Comment, "constant.numeric": Number,
              "string.quoted.double": String, "entity.name.function.operator": Name.Function,
              "keyword.other.declaration": Keyword, "entity.name.type.preset": Name.Class,
              "variable.other.key": Name.Attribute, "variable.language.symbol": Name.Constant}
    for (line, col), scope in _expected(path).items():
        kind = kinds.get(offsets[line - 1] + col - 1)
        assert kind is not None and kind in family[scope], (path.name, line, col, scope, kind)


def test_rich_prints_a_spec_through_the_grow_lexer(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`growdsl fmt -` on a terminal prints the spec highlighted (rich + the lexer)."""
    import io
    import sys

    from growdsl.cli.check import print_spec

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("FORCE_COLOR", "1")
    print_spec("model bert-base  # a comment\nstage 10k:\n")
    text = out.getvalue()
    assert "\x1b[" in text                                   # coloured
    plain = __import__("re").sub(r"\x1b\[[0-9;]*m", "", text)
    assert plain.split("\n")[:2] == ["model bert-base  # a comment", "stage 10k:"]
    assert text.count("\x1b[") >= 6                           # several token colours
