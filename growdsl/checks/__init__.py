"""The planner's static checks: one pass per module, all run, every diagnostic collected.

Each pass takes the plan and its stage graph (`growdsl.plan.build`) and returns located
`Diagnostic`s (the `source` left None: the CLI fills it in). `PASSES` lists them in order.
"""

from __future__ import annotations

from collections.abc import Callable

from growdsl.checks import budgets, preservation, shapes
from growdsl.errors import Diagnostic
from growdsl.ir import Plan
from growdsl.plan import StageGraph, build

Pass = Callable[[Plan, StageGraph], list[Diagnostic]]

PASSES: tuple[Pass, ...] = (shapes.run, preservation.run, budgets.run)


def check_graph(graph: StageGraph) -> list[Diagnostic]:
    """Every pass on an already built stage graph."""
    found: list[Diagnostic] = []
    for run in PASSES:
        found.extend(run(graph.plan, graph))
    return found


def check_plan(plan: Plan) -> list[Diagnostic]:
    """Every pass on `plan`, diagnostics in pass order then source order."""
    return check_graph(build(plan))
