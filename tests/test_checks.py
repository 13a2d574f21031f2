"""The planner's checks: golden diagnostics for every check's failing spec, passing specs
that stay silent, and the checks that the language makes unreachable, built as IR."""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path

import pytest

from growdsl.checks import PASSES, check_plan
from growdsl.driver import load
from growdsl.ir import Growth, Model, OpCall, Plan, Stage, Train
from growdsl.shapes import Shape

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "planner"
ERRORS = sorted(p.name for p in (GOLDEN / "errors").glob("*.grow"))
OK = sorted(p.name for p in (GOLDEN / "ok").glob("*.grow"))
SHIPPED = sorted(glob.glob("specs/**/*.grow", root_dir=ROOT, recursive=True))


def rendered(rel: str) -> str:
    source, plan = load(rel)
    return "\n".join(dataclasses.replace(d, source=source).render()
                     for d in check_plan(plan)) + "\n"


@pytest.mark.parametrize("name", ERRORS)
def test_failing_spec_gives_its_golden_diagnostic(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    rel = os.path.join("tests", "golden", "planner", "errors", name)
    got = rendered(rel)
    assert got == (GOLDEN / "errors" / name).with_suffix(".err").read_text()
    assert f"error[{name.split('-')[0]}]" in got.splitlines()[0]


@pytest.mark.parametrize("name", OK)
def test_passing_spec_is_silent(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, plan = load(os.path.join("tests", "golden", "planner", "ok", name))
    assert check_plan(plan) == []


def test_every_check_code_has_a_golden_failure() -> None:
    codes = {name.split("-")[0] for name in ERRORS}
    # E402 and E405 cannot be written in the language (lowering refuses them first);
    # they are covered below on IR.
    assert codes >= {"E403", "E404", "E406", "E407", "E408", "E409", "E410", "E411", "E412",
                     "E413", "E414", "E415", "E420", "E501", "E601", "E602", "E801",
                     "E802"}
    assert len(PASSES) == 6


def _plan(*shapes: Shape, growth: Growth | None = None) -> Plan:
    stages = tuple(Stage(index=i, name=f"stage{i + 1}", steps=10, tokens=10 * 8 * s.seq,
                         shape=s, train=Train(batch=8),
                         growth=growth if i < len(shapes) - 1 else None)
                   for i, s in enumerate(shapes))
    return Plan(source="<ir>", model=Model(family=shapes[-1].family, shape=shapes[-1]),
                train=Train(batch=8), stages=stages)


TARGET = Shape(family="bert", layers=4, hidden=128, heads=2, kv_heads=2, head_dim=64, ffn=512,
               vocab=1000, seq=128, positions=128)


def test_nonpositive_dimension_is_reported_on_ir() -> None:
    found = check_plan(_plan(TARGET.replace(layers=0), TARGET,
                             growth=Growth(ops=(OpCall(name="stack"),))))
    assert [d.code for d in found] == ["E402"]
    assert "layers=0 must be positive" in found[0].message


def test_sharing_must_divide_ffn_on_ir() -> None:
    found = check_plan(_plan(TARGET.replace(ffn_share=3), TARGET,
                             growth=Growth(ops=(OpCall(name="unshare"),))))
    assert [d.code for d in found] == ["E405"]


@pytest.mark.parametrize("rel", SHIPPED)
def test_shipped_specs_pass_every_planner_check(rel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, plan = load(rel)
    assert check_plan(plan) == []
