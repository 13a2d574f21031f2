"""Explicit weight maps: for every tensor of a family's model, which space each axis lives in.

Spaces: `D` residual stream (hidden), `Q` query/attention units (heads x head_dim), `KV`
key/value units (kv_heads x head_dim), `QKV` GPT-2's fused [q | k | v] units, `F` stored FFN
units, `R` factorization rank, `V` vocabulary, `P` positions, `T` token types, `N` fixed.
Each axis also has a role: `o` (the tensor produces this space: growth copies the slice) or
`i` (the tensor consumes it: growth copies the slice and divides by the copy count, the
Net2Net rule). The final norm before a tied head consumes `D` (role `i`): dividing its gain
and bias by the copy count is what keeps tied logits exact.

Keys are listed concretely for one `Shape` (layer index filled in); tied copies (a tied head)
are left out: they are re-tied by the model, never stored twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from growdsl.shapes import Shape

Axis = tuple[str, str]          # (space, role)
Axes = tuple[Axis, ...]
WeightMap = dict[str, Axes]

D_O, D_I, F_O, F_I = ("D", "o"), ("D", "i"), ("F", "o"), ("F", "i")
Q_O, Q_I, KV_O = ("Q", "o"), ("Q", "i"), ("KV", "o")


@dataclass(frozen=True, kw_only=True, slots=True)
class Family:
    """One model family: its HF class, key layout and the modules growth treats specially."""

    name: str
    model_class: str
    layer_prefix: str                               # "bert.encoder.layer.{i}."
    layer_axes: Callable[[Shape], WeightMap]        # suffix -> axes, unfactored
    global_axes: Callable[[Shape], WeightMap]
    ffn_in: tuple[str, ...]                         # module suffixes producing F
    ffn_out: str                                    # module suffix consuming F
    residual_out: tuple[str, ...]                   # modules writing into the residual stream
    conv1d: bool = False                            # weights stored [in, out] (GPT-2 Conv1D)
    ffn_bias: bool = True
    position_key: str | None = None                 # learned position table, if any
    base_prefix: str = ""                           # the base model's keys ("bert.")
    bare_class: str = ""                            # the headless base model ("BertModel")
    head_prefixes: tuple[str, ...] = ()             # keys of the LM head ("cls.", "lm_head.")
    optional: tuple[tuple[str, Axes], ...] = ()     # global tensors a bare checkpoint may
    #                                                 hold or not (BertModel's pooler)

    def layer_key(self, i: int, suffix: str) -> str:
        return self.layer_prefix.format(i=i) + suffix

    def is_head(self, key: str) -> bool:
        """True for a key of the language-model head (absent from a bare model)."""
        return key.startswith(self.head_prefixes)

    def split_layer_key(self, key: str) -> tuple[int, str] | None:
        """`(layer, suffix)` for a per-layer key, None for a global one."""
        head, _, _ = self.layer_prefix.partition("{i}")
        if not key.startswith(head):
            return None
        index, _, suffix = key[len(head):].partition(".")
        return (int(index), suffix) if index.isdigit() else None


def _factorized(fam: Family, axes: WeightMap) -> WeightMap:
    """Replace each FFN matrix `m` by `m.0` (in -> rank) and `m.1` (rank -> out)."""
    out: WeightMap = {}
    for suffix, ax in axes.items():
        module, _, leaf = suffix.rpartition(".")
        if module not in (*fam.ffn_in, fam.ffn_out):
            out[suffix] = ax
            continue
        if leaf == "bias":
            out[f"{module}.1.bias"] = ax
            continue
        o_ax, i_ax = (ax[1], ax[0]) if fam.conv1d else (ax[0], ax[1])
        out[f"{module}.0.weight"] = (("R", "o"), i_ax)
        out[f"{module}.1.weight"] = (o_ax, ("R", "i"))
    return out


def weight_map(shape: Shape) -> WeightMap:
    """Every stored tensor of the model `shape` describes, with its axes' spaces."""
    fam = family(shape.family)
    layer = fam.layer_axes(shape)
    if shape.ffn_rank:
        layer = _factorized(fam, layer)
    out: WeightMap = dict(fam.global_axes(shape))
    for i in range(shape.layers):
        for suffix, ax in layer.items():
            out[fam.layer_key(i, suffix)] = ax
    return out


def space_sizes(shape: Shape, type_vocab: int = 2) -> dict[str, int]:
    """The length of every space for `shape` (the `N` space never appears in a map)."""
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    return {"D": shape.hidden, "Q": q, "KV": kv, "QKV": q + 2 * kv, "F": shape.ffn_stored,
            "R": shape.ffn_rank, "V": shape.vocab, "P": shape.positions, "T": type_vocab}


def tensor_shapes(shape: Shape, type_vocab: int = 2) -> dict[str, tuple[int, ...]]:
    """Every stored tensor's shape, without building the model."""
    size = space_sizes(shape, type_vocab)
    return {key: tuple(size[space] for space, _ in axes)
            for key, axes in weight_map(shape).items()}


def family(name: str) -> Family:
    """The family record for `bert`, `gpt2` or `llama`."""
    from growdsl.backend.families import bert, gpt2, llama

    table = {"bert": bert.FAMILY, "gpt2": gpt2.FAMILY, "llama": llama.FAMILY}
    return table[name]
