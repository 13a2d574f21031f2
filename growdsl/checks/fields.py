"""Config fields: every operator of a growth step keeps every field of the model's Hugging
Face config (rope scaling, per-layer attention kinds, GPT-2's layer-index scaling, ...), or
the step is refused here, at the operator, before any run (E420). What each family's
fields need of each operator is data in `growdsl/families/`."""

from __future__ import annotations

from growdsl.errors import Diagnostic
from growdsl.hf_config import operator_problems
from growdsl.ir import Plan
from growdsl.operators import REGISTRY
from growdsl.plan import StageGraph


def run(plan: Plan, graph: StageGraph) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for stage in plan.stages:
        if stage.growth is None:
            continue
        for call in stage.growth.ops:
            op = REGISTRY.get(call.name)
            if op is None:
                continue
            for problem in operator_problems(stage.shape, call.name, op.dims):
                found.append(Diagnostic(
                    code="E420", span=call.span, message=problem,
                    help="use another operator for this growth, or a model without this "
                         "setting (docs/operators.md: config fields by operator)"))
    return found
