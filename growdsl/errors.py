"""User-facing diagnostics: `file:line:col: error[CODE]: message`, the line, a caret, a hint.

A user mistake raises `GrowError` carrying one or more `Diagnostic`s; the CLI renders them
and exits 1. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from growdsl.keys import COMMON_NAMES, NAME_HINTS
from growdsl.source import NO_SPAN, Source, Span


@dataclass(frozen=True, kw_only=True, slots=True)
class Diagnostic:
    """One located message. `code` is stable (E1xx syntax, E2xx names, E3xx values,
    E4xx shapes, E5xx preservation, E6xx budgets, E7xx files and I/O)."""

    code: str
    message: str
    span: Span = NO_SPAN
    help: str | None = None
    severity: str = "error"
    source: Source | None = field(default=None, compare=False)

    def render(self) -> str:
        """The diagnostic as the CLI prints it (no colour)."""
        where = self.source.path if self.source else "<input>"
        head = f"{where}:{self.span.line}:{self.span.col}" if self.span.line else where
        lines = [f"{head}: {self.severity}[{self.code}]: {self.message}"]
        if self.source is not None and self.source.text and self.span.line:
            text = self.source.line_text(self.span.line)
            gutter = f"{self.span.line:>4} | "
            lines.append(gutter + text)
            width = _caret_width(self.span, text)
            lines.append(" " * (len(gutter) - 2) + "| " + " " * (self.span.col - 1) + "^" * width)
        if self.help:
            lines.append(f"  help: {self.help}")
        return "\n".join(lines)


def _caret_width(span: Span, text: str) -> int:
    if span.end_line == span.line and span.end_col > span.col:
        return max(1, min(span.end_col, len(text) + 1) - span.col)
    return max(1, len(text) - span.col + 1) if span.col <= len(text) else 1


class GrowError(Exception):
    """A user mistake: one or more diagnostics. Never a bug."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A `help:` text naming the closest candidate, if one is close enough; a name other
    tools use (`keys.COMMON_NAMES`) is mapped to the language's own.

    >>> did_you_mean("warmpu", ["warmup", "lr", "batch"])
    'did you mean `warmup`?'
    >>> did_you_mean("zzz", ["warmup"]) is None
    True
    >>> did_you_mean("gpt2-small", ["gpt2", "gpt2-xl", "bert-base"])
    'did you mean `gpt2`?'
    """
    candidates = set(candidates)
    if COMMON_NAMES.get(word) in candidates:
        return f"did you mean `{COMMON_NAMES[word]}`?"
    if word in NAME_HINTS:
        return NAME_HINTS[word]
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def one_of(candidates: Iterable[str]) -> str:
    """`expected one of a, b, c` for a help line.

    >>> one_of(["top", "bottom", "top"])
    'expected one of `bottom`, `top`'
    """
    return "expected one of " + ", ".join(f"`{c}`" for c in sorted(set(candidates)))
