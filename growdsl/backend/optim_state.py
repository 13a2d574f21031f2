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
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from growdsl.backend.models import stored_state
from growdsl.backend.surgery import Grown, grow_lazy
from growdsl.backend.surgery.core import lazy

POLICIES = ("reset", "transfer", "transform")
# how each optimizer moment grows under `transform`: as a first or as a second moment
MOMENT_KIND = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "max_exp_avg_sq": "exp_avg_sq",
               "momentum_buffer": "exp_avg"}


def moment_kind(moment: str, policy: str) -> str:
    """The growth kind (`surgery.grow_lazy`'s `kind`) of the optimizer moment `moment` under
    `policy`: copied as it is (`transfer`), or rescaled as a first or second moment."""
    return "transfer" if policy == "transfer" else MOMENT_KIND.get(moment, "exp_avg")


def _template(name: str) -> str:
    return re.sub(r"\.\d+\.", ".{i}.", name)


def param_groups_like(old_opt: torch.optim.Optimizer, old_model: nn.Module,
                      new_model: nn.Module) -> list[dict[str, Any]]:
    """Param groups for an optimizer over `new_model`: the old groups' settings, each new
    parameter in the group of the old parameter of its name (a new layer's parameter joins
    the group of the same parameter in its source layer; an unknown one the first group)."""
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


def grow_moments(old_opt: torch.optim.Optimizer, old_model: nn.Module,
                 new_opt: torch.optim.Optimizer, new_model: nn.Module, grown: Grown,
                 policy: str, keys: Iterable[str], *,
                 zeros: Callable[[str], torch.Tensor],
                 read: Callable[[torch.Tensor], torch.Tensor],
                 place: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Fill `new_opt.state` for every parameter of `new_model`: each moment of `old_opt`
    grown through the step's operators (`moment_kind`), zeros for an old tensor without
    state, the step count kept; one moment at a time. `keys` are the old model's stored
    keys (`models.stored_keys`: tied copies once, as growth keys them); `zeros(key)` the
    moment of an old tensor without state; `read(t)` the part of an old moment growth reads
    and `place(p, t)` the state tensor for new parameter `p` of its grown moment `t` (plain:
    a copy; sharded: gathered or local, then this rank's shard)."""
    old_names = {id(p): n for n, p in old_model.named_parameters()}
    by_name = {old_names[id(p)]: s for p, s in old_opt.state.items()}
    sample = next(iter(by_name.values()))
    moments = [k for k, v in sample.items() if torch.is_tensor(v) and v.dim() > 0]
    params = dict(new_model.named_parameters())
    entries: dict[str, dict[str, Any]] = {n: {} for n in params}
    for moment in moments:
        state = {k: read(by_name[k][moment]) if k in by_name else zeros(k) for k in keys}
        grown_m = grow_lazy(lazy(state), grown.steps, grown.seed, moment_kind(moment, policy))
        for name, p in params.items():      # one grown moment tensor at a time
            entries[name][moment] = place(p, grown_m[name]())
        del grown_m, state
    step = sample.get("step")
    for name, p in params.items():
        if step is not None:
            entries[name]["step"] = step.clone() if torch.is_tensor(step) else step
        new_opt.state[p] = entries[name]


def grow_optimizer(old_opt: torch.optim.Optimizer, old_model: PreTrainedModel,
                   new_model: PreTrainedModel, grown: Grown, policy: str) -> torch.optim.Optimizer:
    """A new optimizer of the same class over `new_model`, state per `policy`."""
    if policy not in POLICIES:
        raise ValueError(f"optimizer state policy must be one of {POLICIES}, got {policy!r}")
    new_opt = type(old_opt)(param_groups_like(old_opt, old_model, new_model))  # type: ignore[call-arg]
    if policy == "reset" or not old_opt.state:
        return new_opt
    stored = stored_state(old_model)
    grow_moments(old_opt, old_model, new_opt, new_model, grown, policy, stored,
                 zeros=lambda k: torch.zeros_like(stored[k]), read=lambda t: t,
                 place=lambda p, t: t.contiguous().to(p.device, p.dtype).clone())
    return new_opt
