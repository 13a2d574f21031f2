"""`split_heads`: more, smaller heads with the attention width fixed (Gu et al., NAACL 2021;
Chen et al., ACL 2022 grow heads with width). The q/k/v/o weights are reinterpreted, not
moved: the temperature 1/sqrt(head_dim) and the grouping change, so not preserving.
"""

from __future__ import annotations

from growdsl.backend.surgery.core import Ctx, LazyState
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    if (src.heads * src.head_dim != dst.heads * dst.head_dim
            or src.kv_heads * src.head_dim != dst.kv_heads * dst.head_dim):
        raise ValueError("split_heads keeps heads x head_dim and kv_heads x head_dim fixed")
    return dict(state)
