"""Every shipped spec checks clean, emits IR that validates and round-trips, and is
already in canonical format."""

from __future__ import annotations

from pathlib import Path

import pytest

from growdsl import ir_json
from growdsl.driver import read_source, validate
from growdsl.parser import parse
from growdsl.printer import print_file

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "growdsl" / "specs" / "demo.grow"         # shipped inside the package
SPECS = [*sorted((REPO / "specs").glob("*/*.grow")), DEMO]


def test_the_shipped_specs_are_there() -> None:
    names = {p.relative_to(REPO / "specs").as_posix() for p in SPECS if p != DEMO}
    for needed in ("papers/stacking-bert-base.grow", "papers/stacking-bert-large.grow",
                   "papers/compoundgrow-bert-base.grow", "papers/compoundgrow-bert-large.grow",
                   "papers/bert2bert-bert-base.grow", "papers/bert2bert-gpt-base.grow",
                   ):
        assert needed in names
    assert DEMO.exists()


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shipped_spec_checks_and_round_trips(path: Path) -> None:
    _, plan = validate(path)
    document = ir_json.to_json(plan)
    assert ir_json.from_json(document) == plan
    source = read_source(path)
    assert source.text.startswith("#"), "a shipped spec opens with a comment saying what it shows"
    assert print_file(parse(source)) == source.text, "run `growdsl fmt` on it"
