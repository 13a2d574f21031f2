"""The G_stack guideline (growdsl.gstack): the paper's worked examples, the shipped G_stack
specs, and the note `growdsl plan` adds when a 4x stack strays far from the guideline."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl import gstack
from growdsl.cli import app
from growdsl.driver import load_text as lower_text

REPO = Path(__file__).resolve().parents[1]
GSTACK_SPECS = sorted((REPO / "specs" / "papers").glob("gstack-*.grow"))

TINY = """model gpt2(layers=4, hidden=64, heads=2, ffn=256, seq=64, vocab=1024)
train {
  batch = 16
}
stage 50: depth=L/4 -> stack
stage 450:
"""


def test_doctests() -> None:
    assert doctest.testmod(gstack).failed == 0


@pytest.mark.parametrize(("params", "tokens", "paper_d"), [(7e9, 2e12, 11.1e9),
                                                           (8e9, 15e12, 6.6e9)])
def test_guideline_reproduces_the_papers_table(params: float, tokens: float,
                                               paper_d: float) -> None:
    d = gstack.guideline_tokens(params, 6 * params * tokens)
    assert d == pytest.approx(paper_d, rel=0.01)


def test_guideline_rejects_meaningless_inputs() -> None:
    with pytest.raises(ValueError):
        gstack.guideline_tokens(0, 1e20)


def test_the_llama_and_gpt2_specs_are_shipped() -> None:
    names = {p.stem for p in GSTACK_SPECS}
    assert {"gstack-llama-410m", "gstack-llama-1.1b", "gstack-llama-3b", "gstack-llama-7b",
            "gstack-gpt2"} <= names


@pytest.mark.parametrize("path", GSTACK_SPECS, ids=lambda p: p.stem)
def test_shipped_gstack_specs_sit_on_the_guideline(path: Path) -> None:
    _, plan = lower_text(path.read_text(), str(path))
    g = gstack.for_plan(plan)
    assert g.plan_tokens is not None, "a 4x stack from one small stage"
    assert g.ratio == pytest.approx(1.0, abs=0.1)
    assert gstack.note(plan, g) is None
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert "G_stack guideline (Du et al. 2024): d = " in result.output
    assert "note[N601]" not in result.output


def test_plan_notes_a_far_timing_without_failing(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.grow"
    spec.write_text(TINY)
    result = CliRunner().invoke(app, ["plan", str(spec)])
    assert result.exit_code == 0
    assert f"{spec}:5:1: note[N601]: the small stage trains 51.2k tokens before the 4x stack" \
        in result.output
    assert "more than the plan's 512k tokens in all: the regression does not extrapolate" \
        in result.output
    assert CliRunner().invoke(app, ["check", str(spec)]).exit_code == 0


def test_json_output_stays_json_and_the_note_goes_to_stderr(tmp_path: Path) -> None:
    import json

    spec = tmp_path / "tiny.grow"
    spec.write_text(TINY)
    result = CliRunner().invoke(app, ["plan", "-f", "json", str(spec)])
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert "note[N601]" in result.stderr


def test_no_note_for_other_plan_shapes() -> None:
    three_stages = TINY.replace("stage 50: depth=L/4 -> stack\n",
                                "stage 50: depth=L/4 -> stack\nstage 50: depth=L/2 -> stack\n")
    _, plan = lower_text(three_stages)
    assert gstack.for_plan(plan).plan_tokens is None
    assert gstack.note(plan, gstack.for_plan(plan)) is None
    _, bert = lower_text(TINY.replace("gpt2(", "bert("))
    assert gstack.four_x_stack_tokens(bert) == 50 * 16 * 64


def test_a_budget_limit_is_the_guidelines_c() -> None:
    _, plan = lower_text(TINY + "budget flops <= 0.99 * scratch\n")
    c, source = gstack.budget_of(plan)
    assert source == "budget flops"
    _, plain = lower_text(TINY)
    assert c == pytest.approx(0.99 * gstack.budget_of(plain)[0])


def test_plan_says_when_the_guideline_is_out_of_its_range(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.grow"
    spec.write_text(TINY)
    result = CliRunner().invoke(app, ["plan", str(spec)])
    assert "; out of its range here (d exceeds the plan's 512k tokens in all and N is far " \
           "from the 410M-7B targets it was fitted on): not a timing to use" in result.output
    for path in GSTACK_SPECS:
        shipped = CliRunner().invoke(app, ["plan", str(path)])
        assert "out of its range" not in shipped.output, path
