"""Preservation check: a growth step marked `preserve` must have an exact verdict; every
operator that is not exact is named, with the reason and the operator's own advice
(`Operator.preserve_help`)."""

from __future__ import annotations

from growdsl.checks.shapes import shape_problems
from growdsl.errors import Diagnostic
from growdsl.ir import Plan
from growdsl.operators import REGISTRY
from growdsl.operators.base import APPROXIMATE, DEFAULT_PRESERVE_HELP, EXACT
from growdsl.plan import StageGraph


def run(plan: Plan, graph: StageGraph) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for src, dst in zip(plan.stages, plan.stages[1:], strict=False):
        result = graph.edge(src.index, dst.index)
        if src.growth is None or not src.growth.preserve or result is None or result.error:
            continue
        if shape_problems(src.shape) or shape_problems(dst.shape):
            continue    # the shape check reports the malformed stage once
        for op in result.ops:
            call, verdict = op.call, op.verdict
            if verdict.kind == EXACT:
                continue
            how = "only approximately preserving" if verdict.kind == APPROXIMATE \
                else "not function-preserving"
            found.append(Diagnostic(
                code="E501", span=call.span,
                message=f"{src.name} -> {dst.name} must preserve the function, but "
                        f"`{call.name}` is {how}: {verdict.reason}",
                help=REGISTRY[call.name].preserve_help.get(verdict.kind,
                                                              DEFAULT_PRESERVE_HELP)))
    return found
