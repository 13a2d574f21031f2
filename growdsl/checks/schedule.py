"""Schedule checks: a masked growth's ramp (the argument an operator names as its
`mask_ramp`, e.g. `masked(ramp=...)`) ends within the stage the growth leads into.

The backend ramps the mask c = min(1, step / ramp) on that stage's own step counter and
builds the next stage's model without the mask (growdsl.backend.train, backend.surgery),
so a ramp longer than the stage leaves the new units partly masked for good: the plan
would never train the model it names.
"""

from __future__ import annotations

from growdsl.errors import Diagnostic
from growdsl.ir import Plan
from growdsl.operators import REGISTRY
from growdsl.plan import StageGraph


def run(plan: Plan, graph: StageGraph) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for src, dst in zip(plan.stages, plan.stages[1:], strict=False):
        for call in src.growth.ops if src.growth else ():
            arg = REGISTRY[call.name].mask_ramp
            ramp = call.args.get(arg) if arg else None
            if not isinstance(ramp, int) or ramp <= dst.steps:
                continue
            found.append(Diagnostic(
                code="E415", span=call.span,
                message=f"{src.name} -> {dst.name}: `{call.name}` ramps the mask 0 -> 1 over "
                        f"{ramp} steps, but {dst.name} trains {dst.steps}: the mask never reaches 1",
                help=f"use {arg} <= {dst.steps}, or lengthen {dst.name}: the mask ramps during "
                     "the stage the growth leads into and is gone after it"))
    return found
