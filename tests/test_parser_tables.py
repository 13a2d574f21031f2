"""The LALR tables shipped next to the grammar (growdsl/parser_tables.py): fresh, equal in
effect to building from the grammar, and ignored when they belong to another grammar."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from lark import Lark

from growdsl import parser_tables
from growdsl.parser_tables import TABLES_NAME, grammar_text

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "growdsl" / "grammar" / TABLES_NAME
SPECS = sorted(REPO.glob("specs/*/*.grow")) + sorted(REPO.glob("growdsl/specs/*.grow"))


@functools.cache
def parsers() -> tuple[Lark, Lark]:
    """The parser from the shipped tables and the one built from the grammar."""
    loaded = parser_tables.load(grammar_text())
    assert loaded is not None
    return loaded, parser_tables.build(grammar_text())


def test_the_shipped_tables_are_the_grammars() -> None:
    doc = json.loads(SHIPPED.read_text(encoding="utf-8"))
    fingerprint = {key: doc[key] for key in ("grammar_sha256", "lark")}
    assert fingerprint == parser_tables.fingerprint(grammar_text()), (
        "grammar/grow.lalr.json is stale: run `make parser-tables`")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_tables_parse_as_the_grammar_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    loaded, built = parsers()
    assert loaded.parse(text, start="start") == built.parse(text, start="start")
    assert [(t.type, t.start_pos) for t in loaded.lex(text, dont_ignore=True)] == \
        [(t.type, t.start_pos) for t in built.lex(text, dont_ignore=True)]


def test_fragments_parse_as_the_grammar_does() -> None:
    loaded, built = parsers()
    for start, text in [("settings", "layers = L/2 lr = 3e-4"), ("ops", "-> fpi, stack"),
                        ("item", 'data = "corpus.txt"')]:
        assert loaded.parse(text, start=start) == built.parse(text, start=start)


def test_tables_of_another_grammar_or_lark_are_not_used(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    grammar = grammar_text()
    assert parser_tables.load(grammar + "\n// edited\n") is None
    doc = json.loads(SHIPPED.read_text(encoding="utf-8"))
    doc["lark"] = "0.0.1"
    (tmp_path / TABLES_NAME).write_text(json.dumps(doc))
    monkeypatch.setattr(parser_tables, "_package_file", lambda name: tmp_path / name)
    assert parser_tables.load(grammar) is None
    (tmp_path / TABLES_NAME).write_text("{not json")
    assert parser_tables.load(grammar) is None
