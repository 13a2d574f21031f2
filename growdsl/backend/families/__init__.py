"""The backend's view of the model families: the records, weight maps and their vocabulary
live torch-free in `growdsl.families` (one file per family); this package re-exports them
for the tensor code and adds `layout` (how a checkpoint stores a weight map)."""

from __future__ import annotations

from growdsl.families import Family, get, space_sizes, tensor_shapes, weight_map
from growdsl.families.base import (
    D_I,
    D_O,
    F_I,
    F_O,
    KV_O,
    Q_I,
    Q_O,
    Axes,
    Axis,
    WeightMap,
)

__all__ = ["D_I", "D_O", "F_I", "F_O", "KV_O", "Q_I", "Q_O", "Axes", "Axis", "Family",
           "WeightMap", "family", "space_sizes", "tensor_shapes", "weight_map"]

family = get
