"""Text -> AST. The Lark parser is built once and cached; Lark's errors become diagnostics.

Reading a file also lives here: a missing file, a binary file and an empty file are user
mistakes with a location like any syntax error.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lark import Lark, Token, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import VisitError

from growdsl import ast
from growdsl.errors import Diagnostic, GrowError
from growdsl.source import NO_SPAN, Source, Span
from growdsl.transformer import ToAst, span_of

GRAMMAR_NAME = "grow.lark"

# How the parser's expected terminals read in a message.
_TERMINAL_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "PRESET": "a model preset",
    "CMP": "a comparison (`<=`, `>=`, `<`, `>`, `==`)", "UNIT": "`steps` or `tokens`",
    "LIMIT_KIND": "`budget` or `expect`", "FROM": "`from`", "$END": "end of file",
}


def grammar_text() -> str:
    """The grammar, from the package (grammars/grow.lark in a checkout)."""
    return (resources.files("growdsl") / "grammar" / GRAMMAR_NAME).read_text(encoding="utf-8")


@functools.cache
def _lark(start: str) -> Lark:
    return Lark(grammar_text(), parser="lalr", start=start, propagate_positions=True,
                maybe_placeholders=True)


def read_source(path: str | Path) -> Source:
    """Read a `.grow` file as text, or raise a located GrowError (missing, binary, empty)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise _file_error(name, "E701", "no such file", "check the path") from None
    except IsADirectoryError:
        raise _file_error(name, "E701", "is a directory, not a .grow file", None) from None
    except OSError as exc:
        raise _file_error(name, "E701", f"cannot read: {exc.strerror}", None) from None
    if b"\0" in data:
        at = data.index(b"\0")
        line = data[:at].count(b"\n") + 1
        col = at - (data.rfind(b"\n", 0, at) + 1) + 1
        raise GrowError([Diagnostic(code="E702", message="not a text file (a NUL byte here)",
                                    span=Span(line=line, col=col, end_line=line, end_col=col + 1),
                                    help="a .grow file is UTF-8 text",
                                    source=Source(path=name, text=""))])
    try:
        text = data.decode("utf-8-sig")     # a leading byte-order mark is not content
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise GrowError([Diagnostic(code="E702", message="not valid UTF-8 text",
                                    span=Span(line=line, col=1, end_line=line, end_col=2),
                                    help="a .grow file is UTF-8 text",
                                    source=Source(path=name, text=""))]) from None
    return Source(path=name, text=text)


def _file_error(path: str, code: str, message: str, hint: str | None) -> GrowError:
    return GrowError([Diagnostic(code=code, message=message, help=hint,
                                 source=Source(path=path, text=""))])


def parse(source: Source) -> ast.File:
    """Parse a whole file into an AST, or raise GrowError with the first syntax error."""
    if not source.text.strip():
        raise GrowError([Diagnostic(code="E101", message="empty file: no model and no stage",
                                    span=Span(line=1, col=1, end_line=1, end_col=1),
                                    help="start with a `model` line, e.g. `model bert-base`",
                                    source=source)])
    comments: list[Token] = []
    tree = _parse_tree(source, "start", comments)
    file = _to_ast(tree)
    assert isinstance(file, ast.File)
    kept = tuple(ast.Comment(text=str(c), span=span_of(c)) for c in comments)
    return ast.File(statements=file.statements, comments=kept, span=file.span)


def parse_fragment(source: Source, start: str) -> object:
    """Parse a fragment with another start rule of the grammar (e.g. `growth`, `item`)."""
    return _to_ast(_parse_tree(source, start, []))


def _to_ast(tree: object) -> object:
    try:
        return ToAst().transform(tree)  # type: ignore[arg-type]
    except VisitError as exc:  # a bug in the transformer: keep the traceback
        raise exc.orig_exc from exc


MAX_DEPTH = 200


def _depth(tree: object) -> int:
    """The nesting depth of a parse tree, measured without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in getattr(node, "children", ()))
    return deepest


def _parse_tree(source: Source, start: str, comments: list[Token]) -> object:
    try:
        tree = _lark(start).parse(source.text)
    except UnexpectedInput as exc:
        raise GrowError([_syntax_diagnostic(source, exc)]) from None
    if _depth(tree) > MAX_DEPTH:
        raise GrowError([Diagnostic(code="E104", message="expression nested too deeply",
                                    span=_deepest_span(tree), source=source,
                                    help=f"growdsl reads expressions up to {MAX_DEPTH} levels deep")])
    comments.extend(_comment_tokens(source.text))
    return tree


def _deepest_span(tree: object) -> Span:
    """The span of the statement holding the deepest node (for the E104 caret)."""
    best: tuple[int, object] = (0, tree)
    for statement in getattr(tree, "children", ()):
        depth = _depth(statement)
        if depth > best[0]:
            best = (depth, statement)
    meta = getattr(best[1], "meta", None)
    return span_of(meta) if meta is not None else NO_SPAN


def _comment_tokens(text: str) -> list[Token]:
    """The grammar ignores comments; find them again (outside strings) for the formatter."""
    out: list[Token] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        in_string = escaped = False
        for col, ch in enumerate(line, start=1):
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "#":
                body = line[col - 1:].rstrip()
                out.append(Token("COMMENT", body, line=lineno, column=col, end_line=lineno,
                                 end_column=col + len(body)))
                break
    return out


def _syntax_diagnostic(source: Source, exc: UnexpectedInput) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(source, exc)
    assert isinstance(exc, UnexpectedToken), exc
    token = exc.token
    expected = _expected_words(exc.expected)
    if token.type == "$END":
        line = max(1, len(source.text.splitlines()))
        last = source.line_text(line)
        span = Span(line=line, col=len(last) + 1, end_line=line, end_col=len(last) + 2)
        brace = _unclosed_brace(source.text, len(source.text))
        if brace is not None:
            return Diagnostic(code="E103", message="this `{` is never closed", span=brace,
                              source=source, help="close the block with `}`")
        return Diagnostic(code="E103", message="unexpected end of file: unterminated construct",
                          span=span, help=f"expected {expected}", source=source)
    previous = (getattr(exc, "token_history", None) or [None])[-1]
    brace = _unclosed_brace(source.text, token.start_pos or 0)
    word = next((str(t) for t in (token, previous) if t is not None and str(t) in _STATEMENT_WORDS),
                None)
    if brace is not None and word is not None and _unclosed_brace(source.text, len(source.text)):
        return Diagnostic(code="E103", message="this `{` is never closed", span=brace,
                          source=source, help=f"close the block with `}}` before `{word}`")
    if brace is not None and word == str(token):
        return Diagnostic(code="E102", message=f"`{token}` is a reserved word, not a key",
                          span=span_of(token), source=source,
                          help="see docs/language.md for the keys of a block")
    if exc.expected == {"EQUAL"} and previous is not None and previous.type == "NAME":
        return Diagnostic(code="E102", message=f"`{previous}` is neither a setting nor an operator",
                          span=span_of(previous), source=source,
                          help=f"write `{previous}=value`, or separate operators with commas")
    return Diagnostic(code="E102", message=f"unexpected `{token}`", span=span_of(token),
                      help=_token_hint(str(token), exc.expected) or f"expected {expected}",
                      source=source)


def _bad_character(source: Source, exc: UnexpectedCharacters) -> Diagnostic:
    line_text = source.line_text(exc.line)
    rest = line_text[exc.column - 1:]
    span = Span(line=exc.line, col=exc.column, end_line=exc.line, end_col=exc.column + 1)
    hint = None
    if rest.startswith('"'):
        message, hint = "unterminated string", "close the string with `\"` on the same line"
        span = Span(line=exc.line, col=exc.column, end_line=exc.line, end_col=len(line_text) + 1)
    elif rest[:1].isdigit() or (rest[:1].isalpha() and line_text[exc.column - 2: exc.column - 1].isdigit()):
        word = _word_at(line_text, exc.column)
        message = f"malformed number `{word}`"
        hint = ("numbers take one suffix: k (thousand), M (million), B (billion), T (trillion); "
                "write a product with `*`, e.g. `2*D`")
    else:
        message = f"unexpected character `{exc.char}`"
        hint = "comments start with `#`" if exc.char in "/;" else None
    return Diagnostic(code="E100", message=message, span=span, help=hint, source=source)


_STATEMENT_WORDS = {"model", "init", "train", "stage", "budget", "expect"}


def _unclosed_brace(text: str, upto: int) -> Span | None:
    """The last `{` before offset `upto` with no `}` after it (strings, comments skipped)."""
    opened: list[Span] = []
    for lineno, line in enumerate(text[:upto].split("\n"), start=1):
        in_string = False
        for col, ch in enumerate(line, start=1):
            if ch == '"':
                in_string = not in_string
            elif in_string:
                continue
            elif ch == "#":
                break
            elif ch == "{":
                opened.append(Span(line=lineno, col=col, end_line=lineno, end_col=col + 1))
            elif ch == "}" and opened:
                opened.pop()
    return opened[-1] if opened else None


def _word_at(line: str, col: int) -> str:
    start = col - 1
    while start > 0 and line[start - 1].isalnum():
        start -= 1
    end = col - 1
    while end < len(line) and (line[end].isalnum() or line[end] in "._"):
        end += 1
    return line[start:end]


def _token_hint(token: str, expected: set[str]) -> str | None:
    if "EQUAL" in expected and token in {":", "=="}:
        return "settings are written `key = value`"
    if expected == {"COLON"} or ("COLON" in expected and "UNIT" in expected):
        return "a stage reads `stage 200k: key=value ... -> op`"
    return None


def _expected_words(expected: set[str]) -> str:
    words = sorted({_describe(name) for name in expected})
    return words[0] if len(words) == 1 else "one of " + ", ".join(words)


@functools.cache
def _terminal_patterns() -> dict[str, str]:
    return {t.name: t.pattern.value for t in _lark("start").terminals
            if t.pattern.type == "str"}


def _describe(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    literal = _terminal_patterns().get(name)
    return f"`{literal}`" if literal else name.lower()
