"""Model shapes in Hugging Face config vocabulary, and the named presets.

A `Shape` is what the planner reasons about and what the backend builds: the
architecture of one stage's model plus the low-cost treatments applied to it
(CompoundGrow's FFN sharing / factorization and embedding pooling, bert2BERT's
sub-model training). No torch here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


class Settings(Mapping[str, Any]):
    """A Hugging Face config's fields other than the shape's (rope, norm eps, activation,
    biases, token ids, ...): JSON values, read-only, hashable. A stage's config is its
    target's settings with the stage's shape fields; empty means the family's defaults."""

    __slots__ = ("_data", "_text")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})
        self._text = json.dumps(self._data, sort_keys=True, default=str)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(self._text)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Settings):
            return self._text == other._text
        return isinstance(other, Mapping) and dict(self._data) == dict(other)

    def __repr__(self) -> str:
        return f"Settings({self._data!r})"

    def to_json(self) -> dict[str, Any]:
        return json.loads(self._text)


@dataclass(frozen=True, kw_only=True, slots=True)
class Shape:
    """One model's architecture and treatments.

    `ffn` is the FFN's logical size (what the model computes with); with parameter
    sharing `ffn_share` = k the stored FFN has `ffn // k` units, tiled k times (which
    computes exactly what a `ffn // k`-unit FFN computes). `ffn_rank` > 0 means each FFN
    matrix is factorized as U V with that rank. `seq` is the training sequence length,
    `positions` the position table size (`max_position_embeddings`); `pool` > 1 mean-
    (or max-) pools the first attention layer's queries by that window. `settings` are the
    rest of the model's Hugging Face config, carried unchanged (not compared: two shapes
    are equal when their dimensions and treatments are).
    """

    family: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    seq: int
    positions: int
    tied: bool = True
    ffn_share: int = 1
    ffn_rank: int = 0
    pool: int = 1
    pool_mode: str = "mean"
    submodels: int = 1
    settings: Settings = field(default_factory=Settings, compare=False)

    def replace(self, **changes: Any) -> Shape:
        return dataclasses.replace(self, **changes)

    @property
    def ffn_stored(self) -> int:
        """FFN units actually held as parameters (after sharing)."""
        return self.ffn // self.ffn_share if self.ffn_share else self.ffn

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["settings"] = self.settings.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Shape:
        return cls(**{**data, "settings": Settings(data.get("settings"))})


class Presets(Mapping[str, Shape]):
    """Every registered family's presets by name (each a config read like a user's)."""

    def table(self, *, plugins: bool = True) -> dict[str, Shape]:
        """The presets (`plugins=False`: of the families registered without reading other
        packages' entry points, as `families.names(plugins=False)`)."""
        from growdsl import families

        return _preset_table(families.names(plugins=plugins))

    def __getitem__(self, name: str) -> Shape:
        known = self.table(plugins=False)     # other packages' families only when needed
        return known[name] if name in known else self.table()[name]

    def __contains__(self, name: object) -> bool:
        return name in self.table(plugins=False) or name in self.table()

    def __iter__(self) -> Iterator[str]:
        return iter(self.table())

    def __len__(self) -> int:
        return len(self.table())


@functools.cache
def _preset_table(names: tuple[str, ...]) -> dict[str, Shape]:
    from growdsl import families
    from growdsl.hf_config import shape_from_config

    return {name: shape_from_config(fam.name, dict(config), preset=True)
            for fam in map(families.get, names) for name, config in fam.presets.items()}


PRESETS = Presets()


def derive_shape(base: Shape, values: dict[str, Any], stage: bool = False,
                 seq_sets_positions: bool = True) -> Shape:
    """`base` with `values` set, and the fields that follow from them recomputed: a hidden
    size given without heads keeps the head size (growth copies whole heads), key/value
    heads keep their ratio to heads, and for a whole model (`stage=False`) `positions`
    sets `seq` and, unless `seq_sets_positions` is False (a config's limit, a rotary
    model's), `seq` sets `positions`."""
    values = dict(values)
    hidden = values.get("hidden", base.hidden)
    keeps_head_size = "heads" not in values and "head_dim" not in values
    if keeps_head_size and "hidden" in values and hidden % base.head_dim == 0:
        values["heads"] = hidden // base.head_dim       # growth copies whole heads
    heads = values.get("heads", base.heads)
    if "kv_heads" not in values:
        ratio = Fraction(base.kv_heads, base.heads)
        kv = heads * ratio
        values["kv_heads"] = int(kv) if kv.denominator == 1 else base.kv_heads
    if "head_dim" not in values:
        keeps = hidden == base.hidden and heads == base.heads
        values["head_dim"] = base.head_dim if keeps else max(1, hidden // max(1, heads))
    if not stage and seq_sets_positions and "seq" in values and "positions" not in values:
        values["positions"] = max(values["seq"], 1)
    if not stage and "positions" in values and "seq" not in values:
        values["seq"] = values["positions"]
    return base.replace(**values)
