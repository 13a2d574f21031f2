"""Source text and spans: where in which file a construct was written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True, slots=True)
class Span:
    """A region of a source file; lines and columns count from 1, `end_col` is exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int

    def to_json(self) -> dict[str, int]:
        return {"line": self.line, "col": self.col, "end_line": self.end_line, "end_col": self.end_col}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> Span:
        return cls(line=data["line"], col=data["col"], end_line=data["end_line"], end_col=data["end_col"])


NO_SPAN = Span(line=0, col=0, end_line=0, end_col=0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Source:
    """The text of one `.grow` file (or a command-line snippet) and the name to report it by."""

    path: str
    text: str

    def line_text(self, line: int) -> str:
        r"""The text of 1-based `line`, without its newline; empty past the end.

        >>> Source(path="m.grow", text="model gpt2\r\nstage 1:\n").line_text(1)
        'model gpt2'
        """
        lines = self.text.split("\n")        # Lark counts lines by "\n" alone
        return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""

    @property
    def directory(self) -> Path:
        return Path(self.path).resolve().parent
