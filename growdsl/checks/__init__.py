"""The planner's static checks: one pass per module, all run, every diagnostic collected.

Each pass takes the plan and its stage graph (`growdsl.plan.build`) and returns located
`Diagnostic`s (the `source` left None: the CLI fills it in). `PASSES` lists them in order.
`analyse` builds the graph once and returns it with the diagnostics, for callers (such as
`growdsl plan`) that go on to use the graph.
"""

from __future__ import annotations

from collections.abc import Callable

from growdsl.checks import budgets, fields, preservation, scale, schedule, shapes
from growdsl.errors import Diagnostic
from growdsl.ir import Plan
from growdsl.plan import StageGraph, build

Pass = Callable[[Plan, StageGraph], list[Diagnostic]]

PASSES: tuple[Pass, ...] = (shapes.run, fields.run, schedule.run, preservation.run,
                            budgets.run, scale.run)


def check_graph(graph: StageGraph) -> list[Diagnostic]:
    """Every pass on an already built stage graph."""
    found: list[Diagnostic] = []
    for run in PASSES:
        found.extend(run(graph.plan, graph))
    return found


def analyse(plan: Plan) -> tuple[StageGraph, list[Diagnostic]]:
    """The stage graph of `plan` (built once) and every pass's diagnostics on it."""
    graph = build(plan)
    return graph, check_graph(graph)


def check_plan(plan: Plan) -> list[Diagnostic]:
    """Every pass on `plan`, diagnostics in pass order then source order."""
    return analyse(plan)[1]
