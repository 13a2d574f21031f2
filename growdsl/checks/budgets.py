"""Budget and expectation checks: `budget flops|tokens|steps CMP value [* scratch]` and
`expect speedup|saving CMP value` against the plan's totals; a violated limit names the
stage in which the plan's cumulative cost crossed it.

`saving` is a fraction of the scratch FLOPs (`expect saving >= 0.4`: at least 40% saved).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from growdsl.errors import Diagnostic
from growdsl.ir import Limit, Plan
from growdsl.plan import StageGraph

CMP: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9),
}
UNITS = {"flops": "FLOPs", "tokens": "tokens", "steps": "steps"}


def run(plan: Plan, graph: StageGraph) -> list[Diagnostic]:
    found = []
    for limit in plan.limits:
        diagnostic = budget(limit, graph) if limit.kind == "budget" else expect(limit, graph)
        if diagnostic is not None:
            found.append(diagnostic)
    return found


def _scratch(graph: StageGraph, metric: str) -> float:
    return {"flops": graph.scratch_flops, "tokens": float(graph.scratch_tokens),
            "steps": float(graph.scratch_steps)}[metric]


def _crossed(graph: StageGraph, metric: str, ceiling: float) -> str:
    """`, crossed in STAGE (line N)` for the first stage whose cumulative cost passes
    `ceiling`, or nothing."""
    for node in graph.nodes():
        if node.cumulative(metric) > ceiling:
            return f"; crossed in {node.stage.name} (line {node.stage.span.line})"
    return ""


def budget(limit: Limit, graph: StageGraph) -> Diagnostic | None:
    metric = limit.metric
    bound = limit.value * _scratch(graph, metric) if limit.relative else limit.value
    used = {"flops": graph.total_flops, "tokens": float(graph.total_tokens),
            "steps": float(graph.total_steps)}[metric]
    if CMP[limit.cmp](used, bound):
        return None
    rel = f"{limit.value:g} x scratch = " if limit.relative else ""
    where = _crossed(graph, metric, bound) if limit.cmp in ("<=", "<") else ""
    return Diagnostic(
        code="E601", span=limit.span,
        message=f"budget {metric} {limit.cmp} {rel}{bound:.3g} {UNITS[metric]} is violated: "
                f"the plan uses {used:.3g}{where}",
        help=f"scratch would use {_scratch(graph, metric):.3g} {UNITS[metric]}; shorten or "
             "shrink the stages, or raise the budget")


def expect(limit: Limit, graph: StageGraph) -> Diagnostic | None:
    if limit.metric == "speedup":
        got, text = graph.speedup, f"{graph.speedup:.3f}x"
        ceiling = graph.scratch_flops / limit.value
    else:
        got, text = graph.saving / 100, f"{graph.saving:.1f}% ({graph.saving / 100:.3f})"
        ceiling = graph.scratch_flops * (1 - limit.value)
    if CMP[limit.cmp](got, limit.value):
        return None
    where = ""
    if limit.cmp in (">=", ">"):
        where = _crossed(graph, "flops", ceiling)
        where = where and where.replace("; crossed", f"; the plan's FLOPs pass {ceiling:.3g}")
    return Diagnostic(
        code="E602", span=limit.span,
        message=f"expected {limit.metric} {limit.cmp} {limit.value:g}, but the plan reaches "
                f"{text}{where}",
        help=f"plan {graph.total_flops:.3g} FLOPs vs scratch {graph.scratch_flops:.3g}: "
             f"{graph.scratch}")
