"""The growth transition from one stage into the next, in one place: the model grown (plain,
or shard to shard under torchrun), the function compared on a held-out batch (a `preserve`
step that does not preserve is E718), the optimizer rebuilt per the next stage's
`optimizer_state` policy and retuned to its settings, and its LR schedule. `growdsl run`
(the executor) and the integrations (`growdsl.integrations`: HF Trainer, custom loops)
all call `transition`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from growdsl.backend import distributed, equivalence, sharded
from growdsl.backend.equivalence import Diff
from growdsl.backend.optim_state import grow_optimizer
from growdsl.backend.run_errors import fail
from growdsl.backend.surgery import Grown, describe, grow_model
from growdsl.backend.train import make_optimizer, make_schedule, retune
from growdsl.flops import total_steps
from growdsl.ir import Growth, Plan, Stage
from growdsl.source import Source

PRESERVE_ATOL = 1e-4


@dataclass(frozen=True, kw_only=True, slots=True)
class Transition:
    """What a growth step leaves: the next stage's model and optimizer, and what it did."""

    model: PreTrainedModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    grown: Grown                    # what the operators did (no tensors when sharded)
    diff: Diff                      # old vs grown model on the held-out batch
    ops: str                        # the operators and their verdicts, for logs


def policy(src: Stage, dst: Stage) -> str:
    """The optimizer-state policy of the step into `dst` (reset when the optimizer changes)."""
    return "reset" if dst.train.optimizer != src.train.optimizer else dst.train.optimizer_state


def schedule_for(plan: Plan, stage: Stage,
                 optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """The stage's LR schedule: anew over the stage, or one schedule over the whole plan."""
    for group in optimizer.param_groups:
        group.pop("initial_lr", None)
    if stage.train.schedule == "continue":
        offset = sum(s.steps for s in plan.stages[:stage.index])
        return make_schedule(optimizer, stage.train, offset, total_steps(plan))
    return make_schedule(optimizer, stage.train, 0, stage.steps)


def transition(plan: Plan, model: PreTrainedModel, optimizer: torch.optim.Optimizer,
               src: Stage, dst: Stage, batch: dict[str, torch.Tensor], *, bf16: bool = False,
               source: Source | None = None,
               record: Callable[[Diff, str], None] | None = None) -> Transition:
    """Grow `model` (trained through `src`) and `optimizer` into `dst`'s, verified on `batch`
    (already on the model's device), with `dst`'s LR schedule. Sharded when a torchrun
    process group is active.
    `record(diff, ops)` is called once the models are compared, before a failed `preserve`
    stops the run, so that the failing step is on record."""
    growth = src.growth or Growth(ops=())
    step_policy = policy(src, dst)
    sharded_opt = None
    if distributed.current().active:
        new_model, grown, sharded_opt = sharded.grow_sharded(
            model, optimizer, dst.shape, growth, step_policy, bf16)
    else:
        new_model, grown = grow_model(model, dst.shape, growth)
    diff = equivalence.compare(model, new_model, batch)
    ops = ", ".join(f"{d['op']} ({d['verdict']})" for d in describe(grown)) or "(no operator)"
    if record is not None:
        record(diff, ops)
    if growth.preserve and diff.max_abs > PRESERVE_ATOL:
        fail("E718", f"growth step after stage `{src.name}` is declared `preserve` but changed "
             f"the logits by up to {diff.max_abs:.3g} (tolerance {PRESERVE_ATOL})",
             "this is a bug in an operator or a model treatment: please report it; the stage's "
             "checkpoint is kept", source, growth.span)
    if step_policy == "reset" or (sharded_opt is None and distributed.current().active):
        new_opt = make_optimizer(new_model, dst.train)
    elif sharded_opt is not None:
        new_opt = sharded_opt
    else:
        new_opt = grow_optimizer(optimizer, model, new_model, grown, step_policy)
    retune(new_opt, dst.train)
    return Transition(model=new_model, optimizer=new_opt,
                      scheduler=schedule_for(plan, dst, new_opt), grown=grown, diff=diff,
                      ops=ops)
