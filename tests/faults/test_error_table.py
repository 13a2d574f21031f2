"""Every code of docs/running.md's error table and of the `grow` errors in
docs/operators.md is asserted by some test (the exact code in an assertion), and every row
of docs/reliability.md names test files that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _tests_text() -> str:
    return "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))


def test_every_documented_error_code_is_asserted_by_a_test() -> None:
    codes = set(re.findall(r"^\| (E7\d\d) \|", (REPO / "docs/running.md").read_text(), re.M))
    codes |= set(re.findall(r"^\| (E7[34]\d) \|", (REPO / "docs/operators.md").read_text(),
                            re.M))
    assert {"E710", "E716", "E739"} <= codes
    text = _tests_text()
    untested = sorted(c for c in codes if not re.search(rf"[\"'\[]{c}[\"'\]]", text))
    assert not untested, f"codes no test asserts: {untested}"


def test_every_test_named_in_reliability_md_exists() -> None:
    named = set(re.findall(r"`(tests/[\w/]+\.py)", (REPO / "docs/reliability.md").read_text()))
    assert len(named) >= 10
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, missing
