"""The tensor half of every growth operator (one module each), and `grow_state`, which runs
a growth step on a state dict.

The step is first walked through the static halves (`growdsl.operators.apply_growth`), so
the planner and the tensors agree on every intermediate shape and verdict; then each
operator's `grow(state, src, dst, args, ctx)` turns the lazy state dict of its `src`
shape into that of its `dst` shape. Pure functions: the input state is never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from growdsl.backend.families.layout import Layout
from growdsl.backend.models import (
    build_from_config,
    config_for,
    derive_config,
    load_state,
    shape_of,
    stored_state,
)
from growdsl.backend.surgery import (
    aki,
    clone,
    extend,
    fpi,
    identity,
    interleave,
    masked,
    split_heads,
    stack,
    unfactor,
    unpool,
    unshare,
)
from growdsl.backend.surgery.core import Ctx, LazyState, lazy, materialize
from growdsl.hf_config import operator_problems
from growdsl.ir import ArgValue, Growth
from growdsl.operators import REGISTRY, OpResult, apply_growth, resolve_args, structural_diff
from growdsl.shapes import Shape

TensorOp = Callable[[LazyState, Shape, Shape, dict[str, ArgValue], Ctx], LazyState]

TENSOR_OPS: dict[str, TensorOp] = {
    "stack": stack.grow, "interleave": interleave.grow, "identity": identity.grow,
    "masked": masked.grow, "fpi": fpi.grow, "aki": aki.grow, "clone": clone.grow,
    "split_heads": split_heads.grow, "unshare": unshare.grow, "unfactor": unfactor.grow,
    "unpool": unpool.grow, "extend": extend.grow,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Grown:
    """A grown state dict with its shape, HF config and the per-operator static results."""

    state: dict[str, torch.Tensor]
    shape: Shape
    config: PretrainedConfig
    steps: list[OpResult]
    seed: int = 0


def plan_step(src: Shape, dst: Shape, growth: Growth) -> tuple[Shape, list[OpResult]]:
    """The static walk of a growth step; the final shape must match `dst`'s weights."""
    final, steps = apply_growth(src, dst, growth)
    for step in steps:
        problems = operator_problems(step.before, step.call.name,
                                     REGISTRY[step.call.name].dims)
        if problems:
            raise ValueError("; ".join(problems))
    diff = structural_diff(final, dst)
    if diff:
        raise ValueError(f"the growth step leaves {', '.join(diff)} different from the target")
    return final.replace(seq=dst.seq, submodels=dst.submodels), steps


def grow_lazy(state: LazyState, steps: list[OpResult], seed: int, kind: str, *,
              layout: Layout | None = None, start: int = 0) -> LazyState:
    """Run the tensor halves of a statically walked step over a lazy state (canonical keys
    of `layout`, the full model's when None). `start` is the index of `steps[0]` in the
    whole step, so that a step run operator by operator draws the same random maps."""
    for index, step in enumerate(steps, start):
        args = resolve_args(REGISTRY[step.call.name], step.call.args)
        ctx = Ctx(kind=kind, seed=seed * 1009 + index, layout=layout)
        state = TENSOR_OPS[step.call.name](state, step.before, step.after, args, ctx)
    return state


def step_config(final: Shape, steps: list[OpResult],
                base: PretrainedConfig | None = None) -> PretrainedConfig:
    """The grown model's config: `base`'s settings (a source checkpoint's) with `final`'s
    shape fields, or `final`'s defaults; with an MSG gate when an operator of the step
    grows units behind a mask (`Operator.mask_ramp`)."""
    config = derive_config(base, final) if base is not None else config_for(final)
    for step in steps:
        ramp = REGISTRY[step.call.name].mask_ramp
        if ramp is not None:
            config.growdsl["mask"] = masked.mask_for(step.before, step.after,
                                                     int(str(step.call.args[ramp])))
    return config


def grow_state(state: Mapping[str, torch.Tensor], src: Shape, dst: Shape, growth: Growth,
               *, kind: str = "weight") -> Grown:
    """Grow a (tied-copies-free) state dict of shape `src` by `growth` into `dst`'s shape."""
    final, steps = plan_step(src, dst, growth)
    grown = materialize(grow_lazy(lazy(state), steps, growth.seed, kind))
    return Grown(state=grown, shape=final, config=step_config(final, steps), steps=steps,
                 seed=growth.seed)


def grow_model(model: PreTrainedModel, dst: Shape, growth: Growth) -> tuple[PreTrainedModel, Grown]:
    """A new model of `dst`'s shape grown from `model` (same dtype and device)."""
    src = shape_of(model.config)
    grown = grow_state(stored_state(model), src, dst, growth)
    new = build_from_config(grown.config, seed=None)
    param = next(model.parameters())
    new.to(device=param.device, dtype=param.dtype)  # type: ignore[call-arg]
    load_state(new, grown.state)
    return new, grown


def describe(grown: Grown) -> list[dict[str, Any]]:
    """Per operator: name, args and verdict (for logs)."""
    return [{"op": s.call.name, "args": dict(s.call.args), "verdict": s.verdict.kind,
             "reason": s.verdict.reason} for s in grown.steps]
