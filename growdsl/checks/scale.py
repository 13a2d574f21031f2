"""Batch arithmetic and memory: each stage's global `batch` must split into
`micro_batch` x accumulation x `world` (E801), the spec's `device` must be known (E803, checked by `lower`),
and, when the spec names a device, every stage must fit in its memory (E802, with the
largest micro batch that fits as the help). The estimate itself is `growdsl.memory`.
"""

from __future__ import annotations

from growdsl.devices import resolve
from growdsl.errors import Diagnostic
from growdsl.ir import Plan, Stage
from growdsl.memory import fit_diagnostics
from growdsl.plan import StageGraph


def batch_split(stage: Stage, world: int) -> Diagnostic | None:
    """E801 when `stage`'s batch is not micro_batch x accumulation x world."""
    train = stage.train
    if train.batch % world:
        return Diagnostic(code="E801", span=stage.span,
                          message=f"stage {stage.name}: batch {train.batch} does not split over "
                                  f"world {world} devices",
                          help=f"make batch a multiple of {world}, or change `world`")
    per_device = train.batch // world
    micro = train.micro(world)
    if per_device % micro:
        fits = next(m for m in range(micro, 0, -1) if per_device % m == 0)
        return Diagnostic(code="E801", span=stage.span,
                          message=f"stage {stage.name}: batch {train.batch} is not micro_batch "
                                  f"{micro} x accumulation x world {world} (each device has "
                                  f"{per_device} samples per step)",
                          help=f"use micro_batch = {fits} (it divides {per_device})")
    return None


def run(plan: Plan, graph: StageGraph) -> list[Diagnostic]:
    found = [d for s in plan.stages if (d := batch_split(s, plan.train.world)) is not None]
    if found or plan.train.device is None:
        return found
    return fit_diagnostics(plan, resolve(plan.train.device), plan.train.world)
