"""`unshare`: CompoundGrow's FFN parameter sharing undone (Gu et al., NAACL 2021, sec. 4.2):
the stored f units are tiled k times, `W1' = tile rows`, `W2' = tile columns / k`. Uniform
duplication: exact.
"""

from __future__ import annotations

import torch

from growdsl.backend.surgery.core import Ctx, LazyState, Map, widen
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    g = torch.arange(dst.ffn_stored) % src.ffn_stored
    return widen(state, src, {"F": Map(g=g, old=src.ffn_stored)}, ctx)
