"""The G_stack growth-timing guideline (Du et al., "Stacking Your Transformers: A Closer Look
at Model Growth for Efficient LLM Pre-Training", NeurIPS 2024, Section 5; code PRTS) and the
note `growdsl plan` adds when a plan strays far from it. No torch.

The paper stacks a small model trained on `d` tokens into a model `g = 4` times deeper
(layer order 0..k-1 repeated four times) and fits, on LLaMA runs from 410M to 7B parameters,

    log10(d) = 0.88 * log10(N) + 163.27 / log10(C) - 5.74

with N the target's parameters and C the compute budget in FLOPs. The paper's worked
examples, which `tests/test_gstack.py` reproduces: Llama2-7B with 2T tokens, d = 11.1B;
Llama3-8B with 15T tokens, d = 6.6B (both with C = 6 N D).

For a plan: N is the target's stored parameter count (`flops.param_count`), and C is the
plan's `budget flops` limit when it has one (a relative one times the scratch FLOPs), else
the scratch FLOPs (the plan's reference run, growdsl.reference: by default the target
trained for the plan's steps; growdsl's FLOP count, which adds attention to the paper's
6 N D). The regression is an extrapolation outside its scale: at CPU sizes (N ~ 1e6,
C ~ 1e13) its 163.27 / log10(C) term alone is 12, and d exceeds the whole budget; `plan`
says so rather than hide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from growdsl import flops, reference
from growdsl.errors import Diagnostic
from growdsl.ir import Plan

SLOPE, NUMERATOR, INTERCEPT = 0.88, 163.27, -5.74
GROWTH_FACTOR = 4         # the paper's recommended g
STRAY_FACTOR = 3.0        # a single small stage's tokens within d / 3 .. 3 d is "near" d
PAPER_PARAMS = (4.1e8, 7e9)   # the target sizes the paper trained (410M to 7B)
DECODER_FAMILIES = ("gpt2", "llama")   # `plan` reports the guideline for these


def guideline_tokens(params: float, budget_flops: float) -> float:
    """d, the small model's tokens: log10(d) = 0.88 log10(N) + 163.27 / log10(C) - 5.74.

    >>> round(guideline_tokens(7e9, 6 * 7e9 * 2e12) / 1e9, 1)   # Llama2-7B, 2T tokens
    11.1
    >>> round(guideline_tokens(8e9, 6 * 8e9 * 15e12) / 1e9, 1)  # Llama3-8B, 15T tokens
    6.6
    """
    if params <= 0 or budget_flops <= 1:
        raise ValueError("N and C must be positive (C > 1 FLOP)")
    return 10 ** (SLOPE * math.log10(params) + NUMERATOR / math.log10(budget_flops) + INTERCEPT)


@dataclass(frozen=True, kw_only=True, slots=True)
class Guideline:
    """The guideline evaluated for a plan, and how the plan's own timing compares."""

    params: int               # N: the target's parameters
    budget: float             # C: FLOPs
    budget_from: str          # "budget flops" | "scratch"
    tokens: float             # d
    plan_tokens: int | None   # the single small stage's tokens, when the plan is a 4x stack
    total_tokens: int         # the whole plan's tokens

    @property
    def ratio(self) -> float | None:
        """The plan's small-stage tokens over d (None: not a 4x stack from one stage)."""
        return None if self.plan_tokens is None else self.plan_tokens / self.tokens

    @property
    def strays(self) -> bool:
        r = self.ratio
        return r is not None and not 1 / STRAY_FACTOR <= r <= STRAY_FACTOR


def budget_of(plan: Plan) -> tuple[float, str]:
    """C for a plan: its `budget flops` limit (relative ones times scratch), else scratch."""
    scratch = reference.flops(plan)
    for limit in plan.limits:
        if limit.kind == "budget" and limit.metric == "flops" and limit.cmp in ("<=", "<", "=="):
            return (limit.value * scratch if limit.relative else limit.value), "budget flops"
    return scratch, "scratch"


def four_x_stack_tokens(plan: Plan) -> int | None:
    """The small stage's tokens when the plan trains one small stage and stacks it 4x deep
    into the target (G_stack's shape of plan); None otherwise."""
    if len(plan.stages) != 2:
        return None
    small = plan.stages[0]
    names = [op.name for op in small.growth.ops] if small.growth else []
    if "stack" not in names or small.shape.layers * GROWTH_FACTOR != plan.target.layers:
        return None
    return small.tokens


def for_plan(plan: Plan) -> Guideline:
    """The guideline's d for the plan's target and budget."""
    params = flops.param_count(plan.target)
    budget, source = budget_of(plan)
    return Guideline(params=params, budget=budget, budget_from=source,
                     tokens=guideline_tokens(params, budget),
                     plan_tokens=four_x_stack_tokens(plan),
                     total_tokens=sum(s.tokens for s in plan.stages))


def _num(x: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def outside(g: Guideline) -> str | None:
    """Why d is no timing for this plan, when it is not: the regression extrapolated past
    the whole plan, or a target far from the 410M-7B it was fitted on; else None."""
    why = []
    if _past_plan(g):
        why.append(f"d exceeds the plan's {_num(g.total_tokens)} tokens in all")
    if _far_from_paper(g):
        why.append("N is far from the 410M-7B targets it was fitted on")
    return " and ".join(why) or None


def _past_plan(g: Guideline) -> bool:
    return g.tokens >= g.total_tokens


def _far_from_paper(g: Guideline) -> bool:
    return not PAPER_PARAMS[0] / 10 <= g.params <= PAPER_PARAMS[1] * 10


def summary(g: Guideline) -> str:
    """One line: d, with N and C and where C came from, and whether d can be used here.

    >>> g = Guideline(params=933_000, budget=5e12, budget_from="scratch", tokens=2.3e12,
    ...               plan_tokens=None, total_tokens=860_000)
    >>> print(summary(g))  # doctest: +NORMALIZE_WHITESPACE
    G_stack guideline (Du et al. 2024): d = 2.3T tokens for the small model (N = 933k
    parameters, C = 5e+12 FLOPs from scratch); out of its range here (d exceeds the plan's
    860k tokens in all and N is far from the 410M-7B targets it was fitted on): not a timing
    to use; `growdsl sweep` measures one
    """
    line = (f"G_stack guideline (Du et al. 2024): d = {_num(g.tokens)} tokens for the small "
            f"model (N = {_num(g.params)} parameters, C = {g.budget:.3g} FLOPs from "
            f"{'the plan' + chr(39) + 's budget' if g.budget_from == 'budget flops' else 'scratch'})")
    why = outside(g)
    if why is None:
        return line
    return (f"{line}; out of its range here ({why}): not a timing to use; `growdsl sweep` "
            "measures one")


def note(plan: Plan, g: Guideline) -> Diagnostic | None:
    """A note (not an error) when a 4x stack from one small stage strays from d by more
    than STRAY_FACTOR either way, at the small stage's line."""
    if not g.strays or g.plan_tokens is None:
        return None
    ratio = g.ratio or 0.0
    way = (f"{ratio:.3g}x the guideline's" if ratio >= 1
           else f"{1 / ratio:.3g}x fewer than the guideline's")
    hints = [f"the guideline gives d = {_num(g.tokens)} tokens"]
    if _past_plan(g):
        hints.append(f"that is more than the plan's {_num(g.total_tokens)} tokens in all: the "
                     "regression does not extrapolate this far")
    if _far_from_paper(g):
        hints.append("the paper fitted it on 410M-7B targets; `growdsl sweep` measures the "
                     "timing on your data instead")
    return Diagnostic(code="N601", severity="note", span=plan.stages[0].span,
                      message=f"the small stage trains {_num(g.plan_tokens)} tokens before the "
                              f"4x stack, {way} (G_stack, Du et al. 2024)",
                      help="; ".join(hints))
