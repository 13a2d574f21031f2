"""A plan's stages for a training loop of your own: the first stage's model, each stage's
optimizer and LR schedule, and the growth step between stages (model, verification,
optimizer state per the plan's policy, schedule), the same `transition` `growdsl run` uses.

    plan = GrowthPlan("specs/tiny/gpt2-width.grow")
    model = plan.initial_model()
    optimizer, schedule = plan.optimizer(model, plan.stages[0])
    for stage in plan.stages:
        for step in range(stage.steps):
            ...  # your forward, backward, optimizer.step(), schedule.step()
        if stage.index + 1 < len(plan.stages):
            model, optimizer, schedule = plan.grow(model, optimizer, after=stage, batch=held_out)

`examples/custom_loop.py` is this loop on plain PyTorch (run by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel

from growdsl import gate
from growdsl.api import Spec, load
from growdsl.backend.equivalence import Diff
from growdsl.backend.start import initial_model
from growdsl.backend.train import make_optimizer
from growdsl.backend.transition import schedule_for, transition
from growdsl.ir import Stage


@dataclass(frozen=True, kw_only=True, slots=True)
class Grown:
    """The next stage's model, optimizer and schedule, and what the growth step did."""

    model: PreTrainedModel
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    diff: Diff                      # old vs grown model on the batch given
    ops: str                        # the operators and their verdicts

    def __iter__(self):  # type: ignore[no-untyped-def]
        """`model, optimizer, schedule = plan.grow(...)`."""
        return iter((self.model, self.optimizer, self.schedule))


class GrowthPlan:
    """A checked plan (the planner's errors refuse it, as `growdsl run` does, unless
    `allow_unverified`), for a loop of your own."""

    def __init__(self, spec: Spec | str | Path, *, allow_unverified: bool = False) -> None:
        self.spec = spec if isinstance(spec, Spec) else load(spec)
        gate.admit(self.spec.plan, self.spec.source, allow_unverified=allow_unverified)
        self.plan = self.spec.plan
        self.stages: tuple[Stage, ...] = self.plan.stages

    def initial_model(self, drop: tuple[str, ...] = ()) -> PreTrainedModel:
        """The first stage's model: fresh (seeded by the stage's `seed`), or the plan's
        `init from` checkpoint, its shape checked (`drop`: globs of its stored tensors to
        leave out, as `growdsl run --drop`)."""
        return initial_model(self.plan, self.spec.source, drop)

    def optimizer(self, model: PreTrainedModel, stage: Stage
                  ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """The stage's optimizer over `model` and its LR schedule (step it once per step)."""
        optimizer = make_optimizer(model, stage.train)
        return optimizer, schedule_for(self.plan, stage, optimizer)

    def grow(self, model: PreTrainedModel, optimizer: torch.optim.Optimizer, *, after: Stage,
             batch: dict[str, torch.Tensor]) -> Grown:
        """The growth step at the end of stage `after`: the grown model, its optimizer (state
        per the next stage's `optimizer_state`, settings retuned) and schedule. `batch` (on
        the model's device) is where the old and grown models are compared; a `preserve`
        step that changes the function is E718."""
        dst = self.stages[after.index + 1]
        done = transition(self.plan, model, optimizer, after, dst, batch,
                          source=self.spec.source)
        return Grown(model=done.model, optimizer=done.optimizer, schedule=done.scheduler,
                     diff=done.diff, ops=done.ops)
