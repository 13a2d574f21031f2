"""Model shapes in Hugging Face config vocabulary, and the named presets.

A `Shape` is what the planner reasons about and what the backend builds: the
architecture of one stage's model plus the low-cost treatments applied to it
(CompoundGrow's FFN sharing / factorization and embedding pooling, bert2BERT's
sub-model training). No torch here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

FAMILIES = ("bert", "gpt2", "llama")


@dataclass(frozen=True, kw_only=True, slots=True)
class Shape:
    """One model's architecture and treatments.

    `ffn` is the FFN's logical size (what the model computes with); with parameter
    sharing `ffn_share` = k the stored FFN has `ffn // k` units, tiled k times (which
    computes exactly what a `ffn // k`-unit FFN computes). `ffn_rank` > 0 means each FFN
    matrix is factorized as U V with that rank. `seq` is the training sequence length,
    `positions` the position table size (`max_position_embeddings`); `pool` > 1 mean-
    (or max-) pools the first attention layer's queries by that window.
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

    def replace(self, **changes: Any) -> Shape:
        return dataclasses.replace(self, **changes)

    @property
    def ffn_stored(self) -> int:
        """FFN units actually held as parameters (after sharing)."""
        return self.ffn // self.ffn_share if self.ffn_share else self.ffn

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Shape:
        return cls(**data)


def _shape(family: str, layers: int, hidden: int, heads: int, ffn: int, vocab: int,
           positions: int, kv_heads: int | None = None, tied: bool = True) -> Shape:
    return Shape(family=family, layers=layers, hidden=hidden, heads=heads,
                 kv_heads=kv_heads or heads, head_dim=hidden // heads, ffn=ffn, vocab=vocab,
                 seq=positions, positions=positions, tied=tied)


# Sources: BERT (Devlin et al. 2019) and Google's BERT miniatures (Turc et al. 2019);
# GPT-2 (Radford et al. 2019, HF configs); LLaMA (Touvron et al. 2023), TinyLlama.
PRESETS: dict[str, Shape] = {
    "bert-tiny": _shape("bert", 2, 128, 2, 512, 30522, 512),
    "bert-mini": _shape("bert", 4, 256, 4, 1024, 30522, 512),
    "bert-small": _shape("bert", 4, 512, 8, 2048, 30522, 512),
    "bert-medium": _shape("bert", 8, 512, 8, 2048, 30522, 512),
    "bert-base": _shape("bert", 12, 768, 12, 3072, 30522, 512),
    "bert-large": _shape("bert", 24, 1024, 16, 4096, 30522, 512),
    "gpt2": _shape("gpt2", 12, 768, 12, 3072, 50257, 1024),
    "gpt2-medium": _shape("gpt2", 24, 1024, 16, 4096, 50257, 1024),
    "gpt2-large": _shape("gpt2", 36, 1280, 20, 5120, 50257, 1024),
    "gpt2-xl": _shape("gpt2", 48, 1600, 25, 6400, 50257, 1024),
    "tinyllama-1.1b": _shape("llama", 22, 2048, 32, 5632, 32000, 2048, kv_heads=4, tied=False),
    "llama-7b": _shape("llama", 32, 4096, 32, 11008, 32000, 2048, tied=False),
    "llama-2-7b": _shape("llama", 32, 4096, 32, 11008, 32000, 4096, tied=False),
    "llama-3-8b": _shape("llama", 32, 4096, 32, 14336, 128256, 8192, kv_heads=8, tied=False),
}

# A bare family name means its base preset; explicit dimensions override it.
FAMILY_DEFAULT = {"bert": "bert-base", "gpt2": "gpt2", "llama": "llama-7b"}

# Hugging Face config.json field names per family, for reading a local config.
HF_FIELDS: dict[str, dict[str, str]] = {
    "bert": {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
             "ffn": "intermediate_size", "vocab": "vocab_size",
             "positions": "max_position_embeddings"},
    "gpt2": {"layers": "n_layer", "hidden": "n_embd", "heads": "n_head", "ffn": "n_inner",
             "vocab": "vocab_size", "positions": "n_positions"},
    "llama": {"layers": "num_hidden_layers", "hidden": "hidden_size",
              "heads": "num_attention_heads", "kv_heads": "num_key_value_heads",
              "ffn": "intermediate_size", "vocab": "vocab_size",
              "positions": "max_position_embeddings", "head_dim": "head_dim",
              "tied": "tie_word_embeddings"},
}


def derive_shape(base: Shape, values: dict[str, Any], stage: bool = False) -> Shape:
    """`base` with `values` set, and the fields that follow from them recomputed: a hidden
    size given without heads keeps the head size (growth copies whole heads), key/value
    heads keep their ratio to heads, and for a whole model (`stage=False`) `seq` and
    `positions` follow each other."""
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
    if not stage and "seq" in values and "positions" not in values:
        values["positions"] = max(values["seq"], 1)
    if not stage and "positions" in values and "seq" not in values:
        values["seq"] = values["positions"]
    return base.replace(**values)
