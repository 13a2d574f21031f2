"""Writing a file atomically (no torch): the one way growdsl replaces a file's content. The
new content goes to a temporary file beside it, is flushed to disk, and is renamed into
place, so a reader (or a run resumed after a crash) sees the old content or the new, never
a part, and no temporary file is left behind when the write fails. Used by every writer of
a whole file: `fmt`, the sweep's plans and reports, the parser tables, `run.json`,
metrics.csv's rebuild on resume, report.md and the plots."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o644           # mkstemp's files are 0600; a written file is readable by all


def replace_with(path: Path, write: Callable[[Path], object], mode: int = FILE_MODE) -> None:
    """Call `write(temporary path)`, flush it to disk, set `mode` and rename it over `path`
    (parents created). The temporary file keeps `path`'s suffix (plotting libraries read
    the format from it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as done:
            os.fsync(done.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Replace `path`'s text with `text` (UTF-8)."""
    replace_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode)
