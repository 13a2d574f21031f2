"""Optimizer state across a growth step: reset, transfer or transform.

The new optimizer always holds EVERY parameter of the grown model (a classic bug: layers
added after the optimizer was built are never trained), grouped as the old one was (a new
layer's parameter joins the group of the same parameter in its source layer).

- reset: fresh state.
- transfer: old moments kept in the old slots, zeros for new units and new layers (the
  first copy of a source layer keeps its moments), step count kept.
- transform: moments mapped through the same operators, rescaled to the grown model's
  gradients: a unit copied C times receives 1/C of the gradient, so on produced axes the
  first moment is divided by C and the second by C^2 (width x2: m/2, v/4). Then each
  copy's next Adam update equals its source's (up to eps; decoupled weight decay acts on
  the divided weights). Depth copies keep their source layer's moments.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from transformers import PreTrainedModel

from growdsl.backend.models import stored_state
from growdsl.backend.surgery import Grown, grow_lazy
from growdsl.backend.surgery.core import lazy, materialize

POLICIES = ("reset", "transfer", "transform")
_MOMENT_KIND = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "max_exp_avg_sq": "exp_avg_sq",
                "momentum_buffer": "exp_avg"}


def _template(name: str) -> str:
    return re.sub(r"\.\d+\.", ".{i}.", name)


def _groups(old_opt: torch.optim.Optimizer, old_model: PreTrainedModel,
            new_model: PreTrainedModel) -> list[dict[str, Any]]:
    """New param groups: same hyperparameters, parameters matched by name template."""
    old_names = {id(p): n for n, p in old_model.named_parameters()}
    where: dict[str, int] = {}
    for index, group in enumerate(old_opt.param_groups):
        for p in group["params"]:
            where.setdefault(_template(old_names[id(p)]), index)
    members: list[list[torch.Tensor]] = [[] for _ in old_opt.param_groups]
    for name, p in new_model.named_parameters():
        members[where.get(_template(name), 0)].append(p)
    out = []
    for group, params in zip(old_opt.param_groups, members, strict=True):
        out.append({**{k: v for k, v in group.items() if k != "params"}, "params": params})
    return [g for g in out if g["params"]]


def grow_optimizer(old_opt: torch.optim.Optimizer, old_model: PreTrainedModel,
                   new_model: PreTrainedModel, grown: Grown, policy: str) -> torch.optim.Optimizer:
    """A new optimizer of the same class over `new_model`, state per `policy`."""
    if policy not in POLICIES:
        raise ValueError(f"optimizer state policy must be one of {POLICIES}, got {policy!r}")
    new_opt = type(old_opt)(_groups(old_opt, old_model, new_model))  # type: ignore[call-arg]
    if policy == "reset" or not old_opt.state:
        return new_opt
    old_names = {id(p): n for n, p in old_model.named_parameters()}
    by_name = {old_names[id(p)]: s for p, s in old_opt.state.items()}
    stored = stored_state(old_model)
    sample = next(iter(by_name.values()))
    moments = [k for k, v in sample.items() if torch.is_tensor(v) and v.dim() > 0]
    grown_moments: dict[str, dict[str, torch.Tensor]] = {}
    for moment in moments:
        kind = "transfer" if policy == "transfer" else _MOMENT_KIND.get(moment, "exp_avg")
        state = {k: by_name[k][moment] if k in by_name else torch.zeros_like(v)
                 for k, v in stored.items()}
        grown_moments[moment] = materialize(grow_lazy(lazy(state), grown.steps, grown.seed, kind))
    step = sample.get("step")
    for name, p in new_model.named_parameters():
        entry: dict[str, Any] = {m: grown_moments[m][name].to(p.device, p.dtype).clone()
                                 for m in moments}
        if step is not None:
            entry["step"] = step.clone() if torch.is_tensor(step) else step
        new_opt.state[p] = entry
    return new_opt
