"""Checkpoint layouts: which of a family's weight-map keys a checkpoint stores, and under
which names. The weight maps are written once, for the full model with its LM head
(`BertForMaskedLM`, `GPT2LMHeadModel`, `LlamaForCausalLM`); a `Layout` is the thin layer
over them for the other layouts a real checkpoint comes in:

- `prefixed`: stored keys carry the base model's prefix (`bert.`, `transformer.`,
  `model.`); a bare model's (`BertModel`, `GPT2Model`, `LlamaModel`) do not.
- `head`: the LM head is stored. Without it, nothing reads the final norm but the caller,
  so it keeps its outputs as copies (role `o`, the untied map's) and the head's keys are
  left out: the function to preserve is the last hidden state. Such a checkpoint's shape
  has no tied head (`Layout.own`), so no verdict speaks of one.
- `extra`: further global entries, each with its axes: the optional modules a checkpoint
  holds (`BertModel`'s pooler), or a verification probe.

Operators work on canonical (full-model) keys; `stored_key` / `canonical_key` translate at
the checkpoint's edge.

`left_out` sorts the stored tensors outside the map: those the family knows to be inert
(`Family.inert`: buffers, modules the class does not have), those the user drops by name
(`--drop GLOB`), and the rest, which `grow` and `run` refuse (E742): growdsl never drops a
tensor silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from growdsl.families import Axes, WeightMap, space_sizes, weight_map
from growdsl.families import get as family
from growdsl.shapes import Shape


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """How one checkpoint stores a family's weight map (see the module doc)."""

    family: str
    prefixed: bool = True
    head: bool = True
    extra: tuple[tuple[str, Axes], ...] = ()

    @property
    def architecture(self) -> str:
        """The HF class that loads this layout (written to `config.architectures`)."""
        fam = family(self.family)
        return fam.model_class if self.head else fam.bare_class

    def describe(self) -> str:
        fam = family(self.family)
        keys = f"keys with `{fam.base_prefix}`" if self.prefixed else \
            f"keys without `{fam.base_prefix}`"
        head = "LM head" if self.head else "no LM head: last hidden states compared"
        return f"{self.architecture} ({keys}, {head})"

    def own(self, shape: Shape) -> Shape:
        """`shape` as this layout stores it: without an LM head, no head is tied."""
        return shape if self.head else shape.replace(tied=False)

    def weight_map(self, shape: Shape) -> WeightMap:
        """Canonical key -> axes of every tensor this layout stores for `shape`."""
        fam = family(self.family)
        full = weight_map(self.own(shape))
        out = {k: axes for k, axes in full.items() if self.head or not fam.is_head(k)}
        out.update(self.extra)
        return out

    def tensor_shapes(self, shape: Shape, type_vocab: int = 2) -> dict[str, tuple[int, ...]]:
        """Stored key -> shape of every tensor this layout stores for `shape`."""
        size = space_sizes(shape, type_vocab)
        return {self.stored_key(k): tuple(size[space] for space, _ in axes)
                for k, axes in self.weight_map(shape).items()}

    def stored_key(self, key: str) -> str:
        """The checkpoint's name for canonical `key`."""
        fam = family(self.family)
        return key if self.prefixed else key.removeprefix(fam.base_prefix)

    def canonical_key(self, stored: str) -> str:
        """The weight map's name for the checkpoint's `stored` key."""
        fam = family(self.family)
        if self.prefixed or fam.is_head(stored):
            return stored
        return fam.base_prefix + stored

    def left_out(self, keys: Iterable[str], drop: Sequence[str] = (),
                 head: bool | None = None) -> LeftOut:
        """The stored `keys` outside the map of the model they go into, sorted (see
        `LeftOut`); `drop`: the user's globs over stored keys; `head`: whether that model
        has an LM head (default: this layout's)."""
        fam = family(self.family)
        head = self.head if head is None else head
        inert, dropped, unknown = [], [], []
        used: set[str] = set()
        for key in keys:
            why = fam.inert_reason(self.canonical_key(key), head)
            globs = [g for g in drop if fnmatchcase(key, g)]
            used.update(globs)
            if why is not None:
                inert.append((key, why))
            elif globs:
                dropped.append(key)
            else:
                unknown.append(key)
        return LeftOut(inert=tuple(inert), dropped=tuple(dropped), unknown=tuple(unknown),
                       unused=tuple(g for g in drop if g not in used))

    def with_extra(self, entries: dict[str, Axes]) -> Layout:
        return Layout(family=self.family, prefixed=self.prefixed, head=self.head,
                      extra=(*self.extra, *entries.items()))


@dataclass(frozen=True, kw_only=True, slots=True)
class LeftOut:
    """A checkpoint's stored tensors outside its layout's map: known inert (key, why),
    dropped by the user's globs, unknown (refused, E742); and the user's globs that match
    none of them (E743)."""

    inert: tuple[tuple[str, str], ...] = ()
    dropped: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()

    def notes(self) -> list[str]:
        """One line per kind left out, for the user."""
        lines = []
        reasons: dict[str, list[str]] = {}
        for key, why in self.inert:
            reasons.setdefault(why, []).append(key)
        for why, keys in reasons.items():
            lines.append(f"left out, inert ({why}): {_listed(keys)}")
        if self.dropped:
            lines.append(f"left out, as --drop asks: {_listed(self.dropped)}")
        return lines

    def refusal(self, family_name: str, option: str) -> tuple[str, str]:
        """(message, help) of E742 for the unknown tensors; `option` how the user drops one
        (`--drop`)."""
        n = len(self.unknown)
        them = "them" if n > 1 else "it"
        return (f"the checkpoint stores {n} tensor{'s' if n > 1 else ''} outside the "
                f"`{family_name}` weight map, not known to be inert: {_listed(self.unknown)}; "
                f"growdsl does not drop {them} silently",
                f"if the model computes the same without {them}, leave {them} out on purpose: "
                + " ".join(f"{option} '{g}'" for g in suggest_globs(self.unknown))
                + " (docs/operators.md lists the tensors each family knows to be inert)")


def _listed(keys: Sequence[str], most: int = 4) -> str:
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return ", ".join(keys[:most]) + more


def suggest_globs(keys: Iterable[str]) -> list[str]:
    """Globs covering exactly `keys` over all layers (layer numbers starred), in order.

    >>> suggest_globs(["cls.seq_relationship.weight", "model.layers.0.mlp.up_proj.bias",
    ...                "model.layers.11.mlp.up_proj.bias"])
    ['cls.seq_relationship.weight', 'model.layers.*.mlp.up_proj.bias']
    """
    out: list[str] = []
    for key in keys:
        glob = re.sub(r"(^|\.)\d+(?=\.)", r"\1*", key)
        if glob not in out:
            out.append(glob)
    return out


def detect(family_name: str, architectures: list[str] | None,
           keys: Iterable[str]) -> Layout | str:
    """The layout of a checkpoint from its `architectures` and stored keys, or a message
    saying why it is not one growdsl can grow."""
    fam = family(family_name)
    keys = list(keys)
    arch = architectures[0] if architectures else None
    prefixed = any(k.startswith(fam.base_prefix) for k in keys)
    if arch in (fam.model_class, f"Pooled{fam.model_class}"):   # growdsl's pooled BERT
        head = True
    elif arch == fam.bare_class:
        head = False
    elif arch is None:
        head = prefixed or any(fam.is_head(k) for k in keys)
    else:
        return (f"architecture `{arch}` is not supported: growdsl grows `{fam.model_class}` "
                f"and the bare `{fam.bare_class}`")
    layout = Layout(family=family_name, prefixed=prefixed, head=head)
    if not head:
        stored = set(keys)
        layout = layout.with_extra({k: axes for k, axes in fam.optional
                                    if layout.stored_key(k) in stored})
    return layout
