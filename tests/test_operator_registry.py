"""One registry entry per operator: the static and the tensor registries name the same
operators, both halves cite the same paper, and what the checks and the backend know
about an operator comes from its static half, not from its name."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from growdsl.operators import REGISTRY
from growdsl.operators.base import APPROXIMATE, DEFAULT_PRESERVE_HELP, NONE, Operator

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1] / "growdsl"
# Modules that use operators but must not single any out by name.
NO_OPERATOR_NAMES = ["checks/preservation.py", "checks/schedule.py", "checks/shapes.py",
                     "checks/fields.py",
                     "checks/budgets.py", "backend/distributed.py"]


def test_static_and_tensor_registries_name_the_same_operators() -> None:
    from growdsl.backend.surgery import TENSOR_OPS

    assert sorted(REGISTRY) == sorted(TENSOR_OPS)
    assert len(REGISTRY) == 12


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_both_halves_cite_the_operators_paper(name: str) -> None:
    op = REGISTRY[name]
    assert isinstance(op, Operator) and op.paper
    first = re.split(r" \(|;", op.paper)[0]             # e.g. "Gong et al., ICML 2019"
    assert re.fullmatch(r"[A-Z][A-Za-z-]+ et al\., ([A-Z]+ )?(19|20)\d\d", first), op.paper
    tensor_half = importlib.import_module(f"growdsl.backend.surgery.{name}")
    doc = " ".join((inspect.getdoc(tensor_half) or "").split())
    assert doc.startswith(f"`{name}`"), doc[:40]
    assert first in doc, f"{name}'s tensor half does not cite {first}"
    static_doc = " ".join((inspect.getdoc(inspect.getmodule(op)) or "").split())
    assert first.split(",")[0] in static_doc


@pytest.mark.parametrize("path", NO_OPERATOR_NAMES)
def test_checks_and_backend_ask_the_registry_not_the_name(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    named = [n for n in REGISTRY if re.search(rf"[\"'`]{n}[\"'`]", text)]
    assert not named, f"{path} names {named}: make it a field of the operator's static half"


def test_preserve_help_is_given_for_the_verdicts_an_operator_can_have() -> None:
    for name, op in REGISTRY.items():
        assert set(op.preserve_help) <= {APPROXIMATE, NONE}, name
        assert all(text and text != DEFAULT_PRESERVE_HELP for text in op.preserve_help.values())
    masked = [n for n, op in REGISTRY.items() if op.mask_ramp is not None]
    for name in masked:
        assert REGISTRY[name].mask_ramp in REGISTRY[name].params, name
        assert REGISTRY[name].params[REGISTRY[name].mask_ramp or ""].type is int
