"""Preservation check: a growth step marked `preserve` must have an exact verdict; every
operator that is not exact is named, with the reason."""

from __future__ import annotations

from growdsl.checks.shapes import shape_problems
from growdsl.errors import Diagnostic
from growdsl.ir import Plan
from growdsl.operators.base import APPROXIMATE, EXACT
from growdsl.plan import GrowthResult, StageGraph


def run(plan: Plan, graph: StageGraph) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for src, dst in zip(plan.stages, plan.stages[1:], strict=False):
        result: GrowthResult | None = graph.graph.edges[src.index, dst.index]["result"]
        if src.growth is None or not src.growth.preserve or result is None or result.error:
            continue
        if shape_problems(src.shape) or shape_problems(dst.shape):
            continue    # the shape check reports the malformed stage once
        for call, _, _, verdict in result.ops:
            if verdict.kind == EXACT:
                continue
            how = "only approximately preserving" if verdict.kind == APPROXIMATE \
                else "not function-preserving"
            found.append(Diagnostic(
                code="E501", span=call.span,
                message=f"{src.name} -> {dst.name} must preserve the function, but "
                        f"`{call.name}` is {how}: {verdict.reason}",
                help=_help(call.name, verdict.kind)))
    return found


def _help(name: str, kind: str) -> str:
    if kind == APPROXIMATE:
        return ("use a whole-multiple width with `fpi(mapping=auto)` or `clone`, "
                "or drop `preserve`")
    alternatives = {"stack": "`identity` (pre-LN) or `masked`", "interleave": "`masked`",
                    "aki": "`fpi`", "unpool": "no operator: removing pooling always changes "
                    "the function", "split_heads": "`fpi` with the head size kept"}
    return f"drop `preserve`, or use {alternatives.get(name, 'an exact operator')}"
