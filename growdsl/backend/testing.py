"""Tiny random shapes, models and batches for the backend's property tests and benchmarks.

Hypothesis strategies (imported lazily: hypothesis is a dev dependency) and plain helpers.
"""

from __future__ import annotations

from typing import Any

import torch

from growdsl import families
from growdsl.ir import Growth, OpCall
from growdsl.shapes import Shape


def tiny_shape(family: str, *, layers: int = 2, heads: int = 2, kv_heads: int | None = None,
               head_dim: int = 4, hidden: int | None = None, ffn: int = 16, vocab: int = 23,
               positions: int = 16, tied: bool = True, **extra: Any) -> Shape:
    """A small shape; `hidden` defaults to heads x head_dim (required where the family
    has no free head size: bert, gpt2)."""
    return Shape(family=family, layers=layers, hidden=hidden or heads * head_dim, heads=heads,
                 kv_heads=kv_heads or heads, head_dim=head_dim, ffn=ffn, vocab=vocab,
                 seq=positions, positions=positions, tied=tied, **extra)


def batch_for(shape: Shape, batch: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids (and an all-ones attention mask)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, shape.vocab, (batch, length), generator=gen)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def growth(*ops: str | tuple[str, dict[str, Any]], seed: int = 0) -> Growth:
    """A growth step from op names or (name, args) pairs."""
    calls = [OpCall(name=o) if isinstance(o, str) else OpCall(name=o[0], args=o[1]) for o in ops]
    return Growth(ops=tuple(calls), seed=seed)


def shapes() -> Any:
    """Hypothesis strategy: tiny shapes of every family (layers 1-4, small dims)."""
    from hypothesis import strategies as st

    @st.composite
    def build(draw: Any) -> Shape:
        family = draw(st.sampled_from(families.names()))
        fam = families.get(family)
        kv = draw(st.integers(1, 2))
        group = draw(st.integers(1, 2)) if fam.grouped_query else 1
        head_dim = draw(st.sampled_from([2, 4]))
        hidden = None
        if fam.free_head_dim:
            hidden = kv * group * draw(st.integers(1, 6))
        return tiny_shape(family, layers=draw(st.integers(1, 4)), heads=kv * group,
                          kv_heads=kv, head_dim=head_dim, hidden=hidden,
                          ffn=draw(st.integers(2, 12)), vocab=draw(st.integers(5, 30)),
                          tied=draw(st.booleans()))

    return build()
