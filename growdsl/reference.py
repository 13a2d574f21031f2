"""The reference run, what `scratch` means: defined here once, for `plan`'s speedup and
saving, the `budget`/`expect` limits relative to `scratch`, the G_stack guideline's C,
`run --baseline` and the run reports.

The reference run is the plan's target model trained from scratch (no growth, no `init`)
in one stage, at the last stage's training settings (batch, optimizer, schedule restarted)
and the target's sequence length, on the plan's corpus and tokenizer, with its first
stage's seed. Its length is the plan's to state:

- by default, the plan's own total steps: the comparison of CompoundGrow (Gu et al. 2021)
  and progressive stacking, which train 1M steps in all against the full model for 1M;
- or `scratch LENGTH [steps|tokens]`: a run of its own length, e.g. `scratch 1M steps`,
  bert2BERT's (Chen et al. 2022) comparison against BERT-base trained for 1M steps while
  the grown model trains fewer.

>>> from growdsl.driver import load_text
>>> text = "model gpt2(layers=4, hidden=64, heads=2, seq=32, vocab=256)\\n" \\
...        "train { batch = 8 }\\nstage 100: depth=L/2 -> stack\\nstage 100:\\n"
>>> _, plan = load_text(text)
>>> steps(plan), describe(plan)
(200, "the target trained from scratch for the plan's 200 steps of 8 x 32 tokens (the default)")
>>> _, stated = load_text(text + "scratch 1k steps\\n")
>>> steps(stated), describe(stated)
(1000, 'the target trained from scratch for 1k steps of 8 x 32 tokens (stated by the plan, line 5)')
>>> round(flops(stated) / flops(plan), 6)
5.0
"""

from __future__ import annotations

from dataclasses import replace

from growdsl import flops as formula
from growdsl.ir import Plan, Stage
from growdsl.keys import format_count

NAME = "scratch"        # the reference run's stage name (and folder: `baseline/`'s stage)


def stated(plan: Plan) -> bool:
    """Whether the plan names its reference run (`scratch LENGTH`)."""
    return plan.scratch is not None


def steps(plan: Plan) -> int:
    """Optimizer steps of the reference run: the stated length, else the plan's total."""
    return plan.scratch.steps if plan.scratch is not None else formula.total_steps(plan)


def stage(plan: Plan) -> Stage:
    """The reference run as a stage: the target at the last stage's training settings."""
    last, first = plan.stages[-1].train, plan.stages[0].train
    train = replace(last, schedule="restart", data=first.data, tokenizer=first.tokenizer,
                    seed=first.seed)
    n = steps(plan)
    return Stage(index=0, name=NAME, steps=n, tokens=n * train.batch * plan.target.seq,
                 shape=plan.target, train=train)


def baseline(plan: Plan) -> Plan:
    """The plan `run --baseline` trains: the reference run alone."""
    return replace(plan, stages=(stage(plan),), init=None, limits=(), scratch=None)


def flops(plan: Plan) -> float:
    """Training FLOPs of the reference run (growdsl.flops's formula)."""
    return formula.stage_flops(stage(plan))


def tokens(plan: Plan) -> int:
    """Tokens the reference run reads."""
    return stage(plan).tokens


def describe(plan: Plan) -> str:
    """The reference run in words, saying whether the plan stated it."""
    run = stage(plan)
    size = f"{format_count(run.steps)} steps of {run.train.batch} x {plan.target.seq} tokens"
    if plan.scratch is None:
        return f"the target trained from scratch for the plan's {size} (the default)"
    return (f"the target trained from scratch for {size} (stated by the plan, "
            f"line {plan.scratch.span.line})")
