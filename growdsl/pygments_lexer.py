"""A Pygments lexer for `.grow` files, registered as the `pygments.lexers` entry point `grow`
(so `pygmentize -l grow`, Sphinx/MkDocs code blocks tagged `grow`, and `rich.syntax.Syntax`
find it). Token classes follow the grammar (grammars/grow.lark): statement keywords,
operators after `->` or `,`, presets after `model`, `key =` settings, the target's symbols,
numbers with their unit suffix, strings, comments.

>>> from pygments.token import Keyword, Number
>>> (Keyword, "model") in list(GrowLexer().get_tokens("model bert-base"))
True
>>> (Number, "200k") in list(GrowLexer().get_tokens("stage 200k:"))
True
>>> [t for t in GrowLexer().get_tokens("scratch 1M steps\nbudget flops <= 0.5*scratch")
...  if t[1] == "scratch"]
[(Token.Keyword.Declaration, 'scratch'), (Token.Name.Constant, 'scratch')]
"""

from __future__ import annotations

from typing import Any, ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from growdsl.keys import SYMBOLS
from growdsl.operators import REGISTRY

_NUMBER = r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[kMBT]?(?![A-Za-z0-9_])"


class GrowLexer(RegexLexer):
    """Lexer for growdsl's `.grow` growth plans."""

    name = "growdsl"
    aliases: ClassVar[list[str]] = ["grow", "growdsl"]
    filenames: ClassVar[list[str]] = ["*.grow"]
    mimetypes: ClassVar[list[str]] = ["text/x-grow"]
    url = "docs/language.md"

    tokens: ClassVar[dict[str, list[Any]]] = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"([^"\\\n]|\\[^\n])*"', String.Double),
            (r"(model)(\s+)([A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_.]+)*)",
             bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"([A-Za-z_][A-Za-z0-9_]*)(\s*)(=)(?!=)", bygroups(Name.Attribute, Whitespace,
                                                                Operator)),
            (words(("model", "init", "train", "stage", "budget", "expect", "sweep"), suffix=r"\b"),
             Keyword.Declaration),
            (r"^scratch\b", Keyword.Declaration),        # the statement; elsewhere a symbol
            (r"\bscratch\b", Name.Constant),
            (words(("from", "preserve", "steps", "tokens"), suffix=r"\b"), Keyword),
            (r"(->|,)(\s*)(" + "|".join(sorted(REGISTRY, key=len, reverse=True)) + r")\b",
             bygroups(Operator, Whitespace, Name.Function)),
            (r"->|<=|>=|==|[<>=+\-*/]", Operator),
            (_NUMBER, Number),
            (words(tuple(SYMBOLS), prefix=r"\b", suffix=r"\b"), Name.Constant),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"[{}():,]", Punctuation),
            (r".", Text),
        ],
    }
