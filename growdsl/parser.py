"""Text -> AST. The Lark parser is built once and cached; Lark's errors become diagnostics.

One lexer reads the text: the grammar's. Comments, which the grammar ignores, are kept
for the formatter by a Lark lexer callback; an unclosed `{` is found from the `{` and `}`
tokens that lexer produces, so a brace, `#` or quote inside a string is never mistaken
for a block or a comment.

An empty text is a located mistake here; reading a file (missing, binary) is the driver's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from lark import Lark, Token, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import VisitError

from growdsl import ast, parser_tables
from growdsl.errors import Diagnostic, GrowError
from growdsl.parser_tables import grammar_text
from growdsl.source import NO_SPAN, Source, Span
from growdsl.transformer import ToAst, span_of

__all__ = ["grammar_text", "parse", "parse_fragment"]

# How the parser's expected terminals read in a message.
_TERMINAL_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "PRESET": "a model preset",
    "CMP": "a comparison (`<=`, `>=`, `<`, `>`, `==`)", "UNIT": "`steps` or `tokens`",
    "LIMIT_KIND": "`budget` or `expect`", "FROM": "`from`", "$END": "end of file",
}


MAX_DEPTH = 200                     # nesting levels of an expression (E104 beyond)
# Words that begin a statement: met inside a block, they mean the block was not closed.
_STATEMENT_WORDS = {"model", "init", "train", "stage", "budget", "expect", "scratch"}
# The tokens the parser drops or needs afterwards, recorded as the lexer produces them.
_RECORDED = ("COMMENT", "LBRACE", "RBRACE")
_recording: ContextVar[list[Token]] = ContextVar("growdsl_recorded_tokens")


def _record(token: Token) -> Token:
    """Lark lexer callback: keep `token` in the current recording (if there is one)."""
    recorded = _recording.get(None)
    if recorded is not None:
        recorded.append(token)
    return token


@contextmanager
def _recorded() -> Iterator[list[Token]]:
    """The `_RECORDED` tokens lexed while in this block."""
    recorded: list[Token] = []
    reset = _recording.set(recorded)
    try:
        yield recorded
    finally:
        _recording.reset(reset)


@functools.cache
def _lark() -> Lark:
    """The parser of every start rule: from the shipped tables when they are the grammar's,
    else built from the grammar (growdsl/parser_tables.py)."""
    grammar = grammar_text()
    callbacks = {"lexer_callbacks": dict.fromkeys(_RECORDED, _record)}
    return parser_tables.load(grammar, **callbacks) or parser_tables.build(grammar, **callbacks)


def parse(source: Source) -> ast.File:
    r"""Parse a whole file into an AST, or raise GrowError with the first syntax error.

    >>> file = parse(Source(path="m.grow", text='model gpt2  # the target\nstage 1k:'))
    >>> [type(s).__name__ for s in file.statements], [c.text for c in file.comments]
    (['ModelDecl', 'StageDecl'], ['# the target'])
    >>> parse(Source(path="m.grow", text="model gpt2\ntrain { lr = 1"))
    Traceback (most recent call last):
    growdsl.errors.GrowError: m.grow:2:7: error[E103]: this `{` is never closed
    ...
    """
    if not source.text.strip():
        raise GrowError([Diagnostic(code="E101", message="empty file: no model and no stage",
                                    span=Span(line=1, col=1, end_line=1, end_col=1),
                                    help="start with a `model` line, e.g. `model bert-base`",
                                    source=source)])
    tree, recorded = _parse_tree(source, "start")
    file = _to_ast(tree)
    assert isinstance(file, ast.File)
    kept = tuple(_comment(t) for t in recorded if t.type == "COMMENT")
    return ast.File(statements=file.statements, comments=kept, span=file.span)


def _comment(token: Token) -> ast.Comment:
    text = str(token).rstrip()          # a CRLF file's `\r`, trailing blanks
    line, col = token.line or 0, token.column or 0
    return ast.Comment(text=text, span=Span(line=line, col=col, end_line=line,
                                            end_col=col + len(text)))


def parse_fragment(source: Source, start: str) -> object:
    """Parse a fragment with another start rule of the grammar (e.g. `settings`, `ops`).

    >>> [op.name for op in parse_fragment(Source(path="--ops", text="fpi, stack"), "ops").ops]
    ['fpi', 'stack']
    """
    return _to_ast(_parse_tree(source, start)[0])


def _to_ast(tree: object) -> object:
    try:
        return ToAst().transform(tree)  # type: ignore[arg-type]
    except VisitError as exc:  # a bug in the transformer: keep the traceback
        raise exc.orig_exc from exc


def _depth(tree: object) -> int:
    """The nesting depth of a parse tree, measured without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in getattr(node, "children", ()))
    return deepest


def _parse_tree(source: Source, start: str) -> tuple[object, list[Token]]:
    """The parse tree, and the comment and brace tokens the lexer met."""
    try:
        with _recorded() as recorded:
            tree = _lark().parse(source.text, start=start)
    except UnexpectedInput as exc:
        raise GrowError([_syntax_diagnostic(source, exc)]) from None
    if _depth(tree) > MAX_DEPTH:
        raise GrowError([Diagnostic(code="E104", message="expression nested too deeply",
                                    span=_deepest_span(tree), source=source,
                                    help=f"growdsl reads expressions up to {MAX_DEPTH} levels deep")])
    return tree, recorded


def _deepest_span(tree: object) -> Span:
    """The span of the statement holding the deepest node (for the E104 caret)."""
    best: tuple[int, object] = (0, tree)
    for statement in getattr(tree, "children", ()):
        depth = _depth(statement)
        if depth > best[0]:
            best = (depth, statement)
    meta = getattr(best[1], "meta", None)
    return span_of(meta) if meta is not None else NO_SPAN


def _syntax_diagnostic(source: Source, exc: UnexpectedInput) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(source, exc)
    assert isinstance(exc, UnexpectedToken), exc
    token = exc.token
    expected = _expected_words(exc.expected)
    braces = _brace_tokens(source.text)
    if token.type == "$END":
        line = max(1, len(source.text.splitlines()))
        last = source.line_text(line)
        span = Span(line=line, col=len(last) + 1, end_line=line, end_col=len(last) + 2)
        brace = _unclosed_brace(braces, len(source.text))
        if brace is not None:
            return Diagnostic(code="E103", message="this `{` is never closed", span=brace,
                              source=source, help="close the block with `}`")
        return Diagnostic(code="E103", message="unexpected end of file: unterminated construct",
                          span=span, help=f"expected {expected}", source=source)
    previous = (getattr(exc, "token_history", None) or [None])[-1]
    brace = _unclosed_brace(braces, token.start_pos or 0)
    word = next((str(t) for t in (token, previous) if t is not None and str(t) in _STATEMENT_WORDS),
                None)
    if brace is not None and word is not None and _unclosed_brace(braces, len(source.text)):
        return Diagnostic(code="E103", message="this `{` is never closed", span=brace,
                          source=source, help=f"close the block with `}}` before `{word}`")
    if brace is not None and word == str(token):
        return Diagnostic(code="E102", message=f"`{token}` is a reserved word, not a key",
                          span=span_of(token), source=source,
                          help="see docs/language.md for the keys of a block")
    if str(token) == "=" and previous is not None and str(previous) in _STATEMENT_WORDS:
        return Diagnostic(code="E102", message=f"`{previous}` starts a statement; it is not a key",
                          span=span_of(previous), source=source,
                          help="see docs/language.md for the keys of a stage or block")
    if exc.expected == {"EQUAL"} and previous is not None and previous.type == "NAME":
        return Diagnostic(code="E102", message=f"`{previous}` is neither a setting nor an operator",
                          span=span_of(previous), source=source,
                          help=f"write `{previous}=value`, or separate operators with commas")
    return Diagnostic(code="E102", message=f"unexpected `{token}`", span=span_of(token),
                      help=_token_hint(str(token), exc.expected,
                                       _last_statement_word(source.text[:token.start_pos or 0]))
                      or f"expected {expected}",
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


def _brace_tokens(text: str) -> list[Token]:
    """Every `{` and `}` token of `text`, as the grammar's lexer reads it (up to the first
    character it cannot read)."""
    with _recorded() as recorded:
        try:
            for _ in _lark().lex(text, dont_ignore=True):
                pass
        except UnexpectedInput:
            pass
    return [t for t in recorded if t.type in ("LBRACE", "RBRACE")]


def _unclosed_brace(braces: list[Token], upto: int) -> Span | None:
    """The last `{` before offset `upto` with no `}` after it (before `upto`)."""
    opened: list[Token] = []
    for token in braces:
        if (token.start_pos or 0) >= upto:
            break
        if token.type == "LBRACE":
            opened.append(token)
        elif opened:
            opened.pop()
    return span_of(opened[-1]) if opened else None


def _word_at(line: str, col: int) -> str:
    start = col - 1
    while start > 0 and line[start - 1].isalnum():
        start -= 1
    end = col - 1
    while end < len(line) and (line[end].isalnum() or line[end] in "._"):
        end += 1
    return line[start:end]


def _token_hint(token: str, expected: set[str], statement: str | None) -> str | None:
    if "EQUAL" in expected and token in {":", "=="}:
        return "settings are written `key = value`"
    if "UNIT" in expected and statement == "scratch":
        return ("the reference run reads `scratch 1M steps` (or `tokens`): the target, trained "
                "at the last stage's settings")
    if expected == {"COLON"} or ("COLON" in expected and "UNIT" in expected):
        return "a stage reads `stage 200k: key=value ... -> op`"
    return None


def _last_statement_word(before: str) -> str | None:
    """The keyword of the statement that `before` (the text up to a token) ends inside."""
    words = [w for w in re.findall(r"(?m)^\s*([a-z]+)\b", before) if w in _STATEMENT_WORDS]
    return words[-1] if words else None


def _expected_words(expected: set[str]) -> str:
    words = sorted({_describe(name) for name in expected})
    return words[0] if len(words) == 1 else "one of " + ", ".join(words)


@functools.cache
def _terminal_patterns() -> dict[str, str]:
    return {t.name: t.pattern.value for t in _lark().terminals
            if t.pattern.type == "str"}


def _describe(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    literal = _terminal_patterns().get(name)
    return f"`{literal}`" if literal else name.lower()
