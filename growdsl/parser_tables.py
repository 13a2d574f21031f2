"""The LALR tables of grammar/grow.lark, precomputed and shipped as JSON, so that a fresh
process does not rebuild them (building them is about a third of a fresh `growdsl check`).

The grammar stays the reference: `grammar/grow.lalr.json` records the SHA-256 of the
grammar text and the Lark version it was built from, and is used only when both match;
otherwise the parser is built from the grammar, as before, only slower. The file is JSON,
never a pickle (Lark's own `cache=True` pickles). Regenerate it after editing the grammar:

    make parser-tables

`tests/test_parser_tables.py` fails while the shipped file is stale.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

from growdsl.atomic import write_text

GRAMMAR_NAME = "grow.lark"
TABLES_NAME = "grow.lalr.json"
# Every start rule the front end parses with (`parser.parse_fragment` names the others).
STARTS = ("start", "settings", "ops", "item")
OPTIONS: dict[str, Any] = {"parser": "lalr", "start": list(STARTS),
                           "propagate_positions": True, "maybe_placeholders": True}
# JSON has no tuples and only string keys: both are tagged, and untagged on reading.
_TUPLE, _INT_KEYS = "\x00tuple", "\x00int-keys"


def grammar_text() -> str:
    """The grammar, from the package (grammars/grow.lark in a checkout).

    >>> grammar_text().startswith("// grow.lark")
    True
    """
    return _package_file(GRAMMAR_NAME).read_text(encoding="utf-8")


def _package_file(name: str) -> Any:
    return resources.files("growdsl") / "grammar" / name


def fingerprint(grammar: str) -> dict[str, str]:
    """What the tables were built from: the grammar text's hash and the Lark version."""
    return {"grammar_sha256": hashlib.sha256(grammar.encode()).hexdigest(),
            "lark": lark.__version__}


def build(grammar: str, **callbacks: Any) -> Lark:
    """The parser built from the grammar text (the slow way, and the reference)."""
    return Lark(grammar, **OPTIONS, **callbacks)


def tables_json(grammar: str) -> str:
    """The JSON text of the grammar's tables, as shipped in grammar/grow.lalr.json."""
    data, memo = build(grammar).memo_serialize([TerminalDef, Rule])
    doc = {**fingerprint(grammar), "data": _encode(data), "memo": _encode(memo)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


def load(grammar: str, **callbacks: Any) -> Lark | None:
    """The parser from the shipped tables, or None when they are missing or were built from
    another grammar or Lark version."""
    try:
        doc = json.loads(_package_file(TABLES_NAME).read_text(encoding="utf-8"),
                         object_hook=_decode)
    except (OSError, ValueError):
        return None
    if {key: doc.get(key) for key in ("grammar_sha256", "lark")} != fingerprint(grammar):
        return None
    loaded: Lark = Lark._load_from_dict(doc["data"], doc["memo"], **callbacks)
    return loaded


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: _encode(item) for key, item in value.items()}
        return {_INT_KEYS: [[key, _encode(item)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in the parser tables")


def _decode(value: dict[str, Any]) -> Any:
    if _TUPLE in value:
        return tuple(value[_TUPLE])
    if _INT_KEYS in value:
        return {key: item for key, item in value[_INT_KEYS]}
    return value


def write(path: Path) -> None:
    """Write the tables of the checkout's grammar to `path` (atomically)."""
    write_text(path, tables_json(grammar_text()))


def main() -> None:
    """`make parser-tables`: rewrite the checkout's grammar/grow.lalr.json."""
    target = Path(__file__).resolve().parent / "grammar" / TABLES_NAME
    write(target)
    print(f"wrote {target}")
