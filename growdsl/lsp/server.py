"""`growdsl lsp`: the language server (pygls, stdio). Every answer comes from the compiler:
diagnostics are `growdsl check`'s (planner passes included, with codes and help), formatting
is `growdsl fmt`, hover and completion read the same tables and stage graph.

Each open document is analysed once per change (`analysis.analyse_text`); hover, definition
and code actions reuse that analysis.
"""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from growdsl import __version__, ast
from growdsl.errors import Diagnostic, GrowError
from growdsl.lsp.analysis import Analysis, analyse_text, contains, nodes_at
from growdsl.lsp.complete import candidates
from growdsl.lsp.hover import hover
from growdsl.parser import parse
from growdsl.printer import print_file
from growdsl.source import Span

server = LanguageServer("growdsl", __version__)
_analyses: dict[str, Analysis] = {}

_KINDS = {"keyword": lsp.CompletionItemKind.Keyword, "key": lsp.CompletionItemKind.Property,
          "preset": lsp.CompletionItemKind.Class, "operator": lsp.CompletionItemKind.Function,
          "argument": lsp.CompletionItemKind.Field, "symbol": lsp.CompletionItemKind.Constant,
          "unit": lsp.CompletionItemKind.Unit, "value": lsp.CompletionItemKind.EnumMember}
_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")


def to_range(span: Span) -> lsp.Range:
    """A compiler span (1-based, end exclusive) as a protocol range (0-based)."""
    if not span.line:
        return lsp.Range(start=lsp.Position(line=0, character=0),
                         end=lsp.Position(line=0, character=0))
    end_line, end_col = (span.end_line, span.end_col) if span.end_line else (span.line, span.col)
    return lsp.Range(start=lsp.Position(line=span.line - 1, character=span.col - 1),
                     end=lsp.Position(line=end_line - 1, character=max(end_col - 1, span.col - 1)))


def to_diagnostic(d: Diagnostic) -> lsp.Diagnostic:
    """A compiler diagnostic as the editor shows it: code, message, help on its own line."""
    severity = (lsp.DiagnosticSeverity.Error if d.severity == "error"
                else lsp.DiagnosticSeverity.Warning)
    message = d.message + (f"\nhelp: {d.help}" if d.help else "")
    return lsp.Diagnostic(range=to_range(d.span), message=message, code=d.code,
                          severity=severity, source="growdsl",
                          data={"help": d.help} if d.help else None)


def analysis_of(ls: LanguageServer, uri: str) -> Analysis:
    """The analysis of the document's current text (made on open and on each change)."""
    document = ls.workspace.get_text_document(uri)
    found = _analyses.get(uri)
    if found is None or found.source.text != document.source:
        found = analyse_text(document.source, to_fs_path(uri) or uri)
        _analyses[uri] = found
    return found


def _publish(ls: LanguageServer, uri: str) -> None:
    analysis = analysis_of(ls, uri)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
        uri=uri, diagnostics=[to_diagnostic(d) for d in analysis.diagnostics]))


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    _publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    _publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: LanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    _analyses.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
        uri=params.text_document.uri, diagnostics=[]))


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def on_hover(ls: LanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    pos = params.position
    found = hover(analysis_of(ls, params.text_document.uri), pos.line + 1, pos.character + 1)
    if found is None:
        return None
    text, span = found
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text),
                     range=to_range(span))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=[" ", ">", ",", "(", "="]))
def on_completion(ls: LanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    document = ls.workspace.get_text_document(params.text_document.uri)
    pos = params.position
    items = [lsp.CompletionItem(label=label, kind=_KINDS[kind], detail=detail or None)
             for label, kind, detail in candidates(document.source, pos.line + 1,
                                                   pos.character + 1)]
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def on_format(ls: LanguageServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    """`growdsl fmt` of the whole buffer as one edit (the printer's text of its syntax tree,
    as `cli.check.format_text`: the front end imports no CLI); none when it does not parse."""
    analysis = analysis_of(ls, params.text_document.uri)
    try:
        text = print_file(parse(analysis.source))
    except GrowError:
        return []
    if text == analysis.source.text:
        return []
    lines = analysis.source.text.split("\n")
    whole = lsp.Range(start=lsp.Position(line=0, character=0),
                      end=lsp.Position(line=len(lines), character=0))
    return [lsp.TextEdit(range=whole, new_text=text)]


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: LanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    """A `model ... from "DIR"` or `init from "DIR"` path opens DIR/config.json; a `data` or
    `tokenizer` path opens the file it names."""
    analysis = analysis_of(ls, params.text_document.uri)
    pos = params.position
    target = path_at(analysis, pos.line + 1, pos.character + 1)
    if target is None or not target.exists():
        return None
    uri = from_fs_path(str(target))
    if uri is None:
        return None
    start = lsp.Position(line=0, character=0)
    return lsp.Location(uri=uri, range=lsp.Range(start=start, end=start))


def path_at(analysis: Analysis, line: int, col: int) -> Path | None:
    """The file a path string at (`line`, `col`) names, read from the spec's directory."""
    if analysis.file is None:
        return None
    found = list(nodes_at(analysis.file, line, col))
    string = next((n for n in reversed(found) if isinstance(n, ast.String)), None)
    if string is None:
        return None
    where = analysis.source.directory / string.text[1:-1].replace('\\"', '"')
    is_checkpoint = any(isinstance(n, ast.InitDecl | ast.ModelDecl) for n in found)
    if is_checkpoint and (where / "config.json").exists():
        return where / "config.json"
    return where


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
def on_code_action(ls: LanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """A quick fix for each diagnostic whose help says `did you mean `X`?`: X replaces the
    diagnostic's range."""
    uri = params.text_document.uri
    actions = []
    for d in params.context.diagnostics:
        match = _DID_YOU_MEAN.search(d.message)
        if match is None or d.range.start == d.range.end:
            continue
        edit = lsp.TextEdit(range=d.range, new_text=match.group(1))
        actions.append(lsp.CodeAction(title=f"Replace with `{match.group(1)}`",
                                      kind=lsp.CodeActionKind.QuickFix, diagnostics=[d],
                                      is_preferred=True,
                                      edit=lsp.WorkspaceEdit(changes={uri: [edit]})))
    return actions


def start() -> None:
    """Serve over stdin/stdout until the client exits."""
    server.start_io()


__all__ = ["analysis_of", "contains", "path_at", "server", "start", "to_diagnostic", "to_range"]
