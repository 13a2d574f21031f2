"""The shape rule shared by the width operators (`fpi`, `aki`, `clone`): hidden size,
heads, key/value heads and FFN size grow with the head size fixed."""

from __future__ import annotations

from growdsl import families
from growdsl.operators._common import gqa_groups, grows, needs_change, width_unshared
from growdsl.operators.base import ShapeError
from growdsl.shapes import Shape

WIDTH_DIMS = ("hidden", "heads", "kv_heads", "ffn")


def norm_name(shape: Shape) -> str:
    """The family's normalization layer, for verdict texts."""
    return families.get(shape.family).norm


def grow_width(op: str, src: Shape, dst: Shape) -> Shape:
    """Move hidden, heads, kv_heads and ffn to `dst`'s values, whole heads copied."""
    if dst.head_dim != src.head_dim:
        raise ShapeError(
            f"`{op}` copies whole heads and keeps the head size {src.head_dim}, "
            f"but the next stage has head size {dst.head_dim}",
            same_head_size(src, dst),
        )
    out = src.replace(**{d: grows(op, src, dst, d) for d in WIDTH_DIMS})
    width_unshared(op, src, out)
    needs_change(op, src, out, WIDTH_DIMS)
    gqa_groups(op, src, out)
    return out


def same_head_size(src: Shape, dst: Shape) -> str:
    """Help for a head-size mismatch: the head count that gives this stage (the one the
    growth step leaves) the next stage's head size, or the other way round."""
    if families.get(src.family).free_head_dim:     # heads alone derive hidden / heads
        return f"give the next stage `head_dim={src.head_dim}`, this stage's head size"
    if src.hidden % dst.head_dim == 0:
        return (f"give this stage heads={src.hidden // dst.head_dim}: hidden {src.hidden} in "
                f"heads of the next stage's size {dst.head_dim}")
    if dst.hidden % src.head_dim == 0:
        return (f"give the next stage heads={dst.hidden // src.head_dim}: hidden {dst.hidden} "
                f"in heads of this stage's size {src.head_dim}")
    return "give both stages the same head size (hidden / heads)"
