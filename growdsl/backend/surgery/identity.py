"""`identity`: LLaMA-Pro block expansion (Wu et al., ACL 2024). New layers copy a source
layer with the attention output projection and FFN down projection (weights and biases)
zeroed, so they add nothing to a pre-LN residual stream: exact for GPT-2 and LLaMA.
`where=append` puts them on top (new layer L + m copies layer m mod L);
`where=interleave` puts one after every group of L / n layers, copying the group's last.
"""

from __future__ import annotations

from growdsl.backend.surgery.core import Ctx, LazyState, relayer
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def plan(old: int, new: int, where: str) -> tuple[list[int], set[int]]:
    """(source of every grown layer, indices of the zeroed new layers)."""
    added = new - old
    if where == "append":
        return list(range(old)) + [m % old for m in range(added)], set(range(old, new))
    group = old // added
    order: list[int] = []
    zeroed: set[int] = set()
    for i in range(old):
        order.append(i)
        if (i + 1) % group == 0 and len(zeroed) < added:
            zeroed.add(len(order))
            order.append(i)
    return order, zeroed


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    order, zeroed = plan(src.layers, dst.layers, str(args["where"]))
    return relayer(state, src, order, zeroed, ctx)
