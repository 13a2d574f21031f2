"""Folding a masked-growth gate into the weights, where that is exact, so that a grown
checkpoint is a stock model computing the grown function (no silent impostor).

MSG (Yao et al., ICLR 2024) gates new FFN units (activations x c) and new layers
(`h + c (Block(h) - h)`). The FFN gate is a scale of the FFN output projection's input
columns: exact for any c. A layer gate at c = 0 makes the layer the identity; on a pre-LN
model that is a block with its residual outputs (attention output and FFN down projection,
weights and biases) zeroed (LLaMA-Pro's identity block): exact. A layer gate of a post-LN
model, or mid-ramp (0 < c < 1), cannot be written as stock weights: `fold_mask` returns
None and the checkpoint keeps its gate (its weights under `models.TREATED_WEIGHTS`, which
stock loading refuses).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from growdsl import families
from growdsl.backend.families import WeightMap, family
from growdsl.backend.surgery.core import LazyState, Thunk
from growdsl.shapes import Shape


def fold_mask(state: LazyState, shape: Shape, weight_map: WeightMap,
              mask: dict[str, Any]) -> LazyState | None:
    """`state` (canonical keys, shape `shape`) with the gate `mask` folded in, or None
    when it cannot be folded exactly."""
    fam = family(shape.family)
    c = float(mask.get("c", 0.0))
    layers = list(mask.get("layers") or [])
    if layers and (c != 0.0 or not families.get(shape.family).pre_ln):
        return None
    out = dict(state)
    for i in layers:
        for suffix in fam.residual_out:
            for part in ("weight", "bias"):
                key = fam.layer_key(i, f"{suffix}.{part}")
                if key in out:
                    out[key] = functools.partial(_zero, out[key])
    ffn_from = mask.get("ffn_from")
    if ffn_from is not None:
        for i in range(shape.layers):
            key = fam.layer_key(i, f"{fam.ffn_out}.weight")
            axis = next(a for a, (space, role) in enumerate(weight_map[key])
                        if (space, role) == ("F", "i"))
            out[key] = functools.partial(_scale_from, out[key], axis, int(ffn_from), c)
    return out


def _zero(thunk: Thunk) -> torch.Tensor:
    return torch.zeros_like(thunk())


def _scale_from(thunk: Thunk, axis: int, start: int, c: float) -> torch.Tensor:
    t = thunk().clone()
    t.narrow(axis, start, t.shape[axis] - start).mul_(c)
    return t
