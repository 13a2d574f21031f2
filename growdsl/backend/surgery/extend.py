"""`extend`: a longer learned position table (BERT's 128 -> 512 schedule, Devlin et al.,
NAACL 2019; CompoundGrow's length growth, Gu et al., NAACL 2021). Rows P .. P'-1 are new:
copies of rows i mod P (`init=copy`) or zero; old rows unchanged, so exact on sequences
of at most P tokens. LLaMA's rotary positions have no table: nothing moves. Optimizer
moments of new rows start at zero.
"""

from __future__ import annotations

import functools

import torch

from growdsl.backend.families import family
from growdsl.backend.surgery.core import Ctx, LazyState, Thunk
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    key = family(src.family).position_key
    out = dict(state)
    if key is not None:
        copy = args["init"] == "copy" and ctx.kind == "weight"
        out[key] = functools.partial(_rows, state[key], dst.positions, copy)
    return out


def _rows(thunk: Thunk, new: int, copy: bool) -> torch.Tensor:
    t_PD = thunk()
    old = t_PD.shape[0]
    extra = t_PD[torch.arange(old, new) % old] if copy else t_PD.new_zeros(new - old, *t_PD.shape[1:])
    return torch.cat([t_PD, extra], dim=0)
