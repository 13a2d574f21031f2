"""Writing a text file atomically (no torch): a temporary file beside it, renamed into
place, so a reader sees the old text or the new, never a part. Used by the front end's
writers (the sweep's plans and reports, the parser tables); the backend's writers go
through `growdsl.backend.report.atomic_write`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    """Replace `path`'s text with `text` (parents created; the file readable by all, 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
