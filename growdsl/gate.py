"""May this plan run? The one place that decides, for `check`, `plan`, `run`, `sweep`, the
API and the integrations.

`blocking` runs every planner pass (`growdsl.checks`) once and returns the stage graph
with the errors that stop a run, located in the spec. `admit` is the run's door: no
errors, or `allow_unverified` (logged loudly), or E719 listing them. `split` is the one
question only the launched processes can answer: whether every stage's batch splits over
them (E720), asked by the runner and by the Trainer integration alike. The backend never
calls the planner's checks itself: whoever starts a run (`growdsl.api.run`) admits it
first. No torch here.
"""

from __future__ import annotations

import dataclasses
import logging

from growdsl.checks import analyse
from growdsl.errors import Diagnostic, GrowError
from growdsl.ir import Plan
from growdsl.plan import StageGraph
from growdsl.source import Source

log = logging.getLogger("growdsl.run")


def blocking(plan: Plan, source: Source) -> tuple[StageGraph, list[Diagnostic]]:
    """The plan's stage graph (built once) and the errors that keep it from running."""
    graph, found = analyse(plan)
    return graph, [dataclasses.replace(d, source=source) for d in found
                   if d.severity == "error"]


def admit(plan: Plan, source: Source, *, allow_unverified: bool = False) -> StageGraph:
    """The stage graph of a plan that may run; GrowError (the errors, then E719) if it may
    not. With `allow_unverified` a failing plan runs, with a loud warning."""
    graph, errors = blocking(plan, source)
    if not errors:
        return graph
    if not allow_unverified:
        raise GrowError([*errors, Diagnostic(
            code="E719", message="the plan does not pass the planner's checks; not running it",
            help="fix the errors above, or pass --allow-unverified to run it anyway",
            source=source)])
    log.warning("!!! RUNNING AN UNVERIFIED PLAN (--allow-unverified): %d check(s) failed:\n%s",
                len(errors), GrowError(errors).render())
    return graph


def split(plan: Plan, source: Source, processes: int, accumulation: int = 1) -> None:
    """GrowError E720, located at the first stage whose batch does not split into
    `processes` x `accumulation` equal parts (the ranks of a launched run, times a Trainer's
    accumulation steps).

    >>> from growdsl.driver import load_text
    >>> source, plan = load_text("model gpt2\\ntrain { batch = 6 }\\nstage 10:\\n")
    >>> split(plan, source, 3)
    >>> split(plan, source, 4)
    Traceback (most recent call last):
    growdsl.errors.GrowError: <string>:3:1: error[E720]: stage stage1's batch 6 does not split over 4 ranks
    ...
    """
    per_step = processes * accumulation
    for stage in plan.stages:
        if stage.train.batch % per_step:
            over = (f"{processes} ranks" if accumulation == 1 else
                    f"{processes} process(es) x {accumulation} accumulation step(s)")
            raise GrowError([Diagnostic(
                code="E720", message=f"stage {stage.name}'s batch {stage.train.batch} does "
                f"not split over {over}", span=stage.span, source=source,
                help="choose a number of processes that divides every stage's batch")])
