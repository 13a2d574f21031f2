"""Golden files of the language: valid specs with their IR JSON, invalid specs with their
exact diagnostic text."""

from __future__ import annotations

from pathlib import Path

import pytest

from growdsl import ir_json
from growdsl.driver import load
from growdsl.errors import GrowError
from tests.golden_util import GOLDEN, REPO, check_golden, relative

OK = sorted((GOLDEN / "ok").glob("*.grow"))
ERRORS = sorted((GOLDEN / "errors").glob("*.grow"))


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("path", OK, ids=lambda p: p.stem)
def test_valid_spec_lowers_to_golden_ir(path: Path) -> None:
    _, plan = load(relative(path))
    text = ir_json.dumps(plan)
    check_golden(path.with_suffix(".json"), text)
    assert ir_json.loads(text) == plan


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.stem)
def test_invalid_spec_gives_golden_diagnostics(path: Path) -> None:
    with pytest.raises(GrowError) as info:
        load(relative(path))
    check_golden(path.with_suffix(".txt"), info.value.render() + "\n")


def test_every_error_file_has_its_golden() -> None:
    assert {p.stem for p in ERRORS} == {p.stem for p in (GOLDEN / "errors").glob("*.txt")}
