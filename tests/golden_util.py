"""Golden-file helpers: compare with the checked-in file, or rewrite it when
GROWDSL_REGEN=1 (then review the diff before committing)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"


def check_golden(path: Path, actual: str) -> None:
    """Assert `actual` equals the golden file's text (or write it in regen mode)."""
    if os.environ.get("GROWDSL_REGEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with GROWDSL_REGEN=1 and review"
    assert actual == path.read_text(encoding="utf-8")


def relative(path: Path) -> str:
    """A path relative to the repository, as the goldens name files."""
    return str(path.relative_to(REPO))
