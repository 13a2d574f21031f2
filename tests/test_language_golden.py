"""Golden files of the language: valid specs with their IR JSON, invalid specs with their
exact diagnostic text, and `fmt`'s canonical text of specs with comments everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from growdsl import ir_json
from growdsl.driver import load, read_source
from growdsl.errors import GrowError
from growdsl.parser import parse
from growdsl.printer import print_file
from growdsl.source import Source
from tests.golden_util import GOLDEN, REPO, check_golden, relative

OK = sorted((GOLDEN / "ok").glob("*.grow"))
ERRORS = sorted((GOLDEN / "errors").glob("*.grow"))
FMT = sorted((GOLDEN / "fmt").glob("*.grow"))


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


@pytest.mark.parametrize("path", FMT, ids=lambda p: p.stem)
def test_fmt_keeps_comments_where_they_were_written(path: Path) -> None:
    text = print_file(parse(read_source(relative(path))))
    check_golden(path.with_suffix(".txt"), text)
    assert print_file(parse(Source(path="again.grow", text=text))) == text


def test_fmt_leaves_a_comment_after_a_one_line_blocks_brace_after_it() -> None:
    source = Source(path="m.grow", text="model gpt2\ntrain { batch = 4 }  # small\nstage 1:\n")
    assert print_file(parse(source)) == "model gpt2\ntrain {\n  batch = 4\n}  # small\nstage 1:\n"


def test_comments_are_the_lexers_never_inside_a_string() -> None:
    text = 'model gpt2  # a\ntrain { data = "x#y{" }  # b "c"\nstage 1: name="s"#d\n'
    for _ in range(2):          # the recording of one parse does not leak into the next
        comments = parse(Source(path="m.grow", text=text)).comments
        found = [(c.text, c.span.line, c.span.col) for c in comments]
        assert found == [("# a", 1, 13), ('# b "c"', 2, 26), ("#d", 3, 18)]

