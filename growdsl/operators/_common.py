"""Helpers shared by the operators' static halves: grow-only moves, lowering a treatment
factor to a divisor, and the grouped-query-attention rule used by the width operators.

Operators receive their arguments already resolved (`growdsl.operators.resolve_args`: every
default filled in), so they read `args[name]`; a required argument may be absent."""

from __future__ import annotations

from growdsl.operators.base import ShapeError
from growdsl.shapes import Shape


def grows(op: str, src: Shape, dst: Shape, dim: str) -> int:
    """`dst`'s value of `dim`, checked not to shrink; returns it."""
    old, new = getattr(src, dim), getattr(dst, dim)
    if new < old:
        raise ShapeError(
            f"`{op}` grows {dim}, but the next stage has {dim} {old} -> {new}",
            f"growth operators never shrink a model; give the next stage {dim} >= {old}, "
            f"or drop `{op}`",
        )
    return int(new)


def lower_to_divisor(op: str, src: Shape, dst: Shape, dim: str, what: str,
                     key: str) -> int:
    """`dst`'s value of the treatment factor `dim` (FFN sharing, pooling window), checked to
    be a proper divisor of `src`'s, which must be above 1; returns it. `what` names the
    treatment in messages, `key` the stage key that asks for it (e.g. `width=ffn/4`)."""
    old, new = getattr(src, dim), getattr(dst, dim)
    if old <= 1:
        raise ShapeError(f"`{op}` needs a stage with {what}, but this one has none",
                         f"drop `{op}`, or give this stage {what} (e.g. `{key}`)")
    if new >= old or old % new:
        raise ShapeError(f"`{op}` lowers the {what} factor {old} to a divisor of it, but the "
                         f"next stage has {new}",
                         f"the next stage usually has no {what} (no `{key.split('=')[0]}=`)")
    return int(new)


def needs_change(op: str, src: Shape, out: Shape, dims: tuple[str, ...]) -> None:
    """Raise when `op` leaves every one of `dims` as it was (it would do nothing)."""
    if all(getattr(src, d) == getattr(out, d) for d in dims):
        now = ", ".join(f"{d}={getattr(src, d)}" for d in dims)
        raise ShapeError(
            f"`{op}` changes nothing here: the next stage keeps {now}",
            f"drop `{op}` from this growth step, or change the next stage's shape",
        )


def factor(op: str, dim: str, old: int, new: int) -> int:
    """The integer factor `new / old`, or a ShapeError naming the dimension."""
    if old <= 0 or new % old:
        raise ShapeError(
            f"`{op}` needs a whole multiple, but {dim} {old} -> {new} is x{new / old:.3g}",
            f"choose a next-stage {dim} that is a multiple of {old}, or use `fpi`",
        )
    return new // old


def gqa_groups(op: str, src: Shape, out: Shape) -> None:
    """Copying whole heads keeps every query head's key/value head when the query heads per
    key/value head (the group) grow, or shrink to a divisor (each group splits into equal
    sub-groups, each reading a copy of the group's key/value head); refuse anything else."""
    if src.heads % src.kv_heads or out.heads % out.kv_heads:
        return      # a malformed shape: the shape check reports it
    old, new = src.heads // src.kv_heads, out.heads // out.kv_heads
    if new < old and old % new:
        raise ShapeError(
            f"`{op}` cannot keep grouped-query attention: query heads per key/value head "
            f"{old} -> {new}, which does not divide {old}",
            f"give the next stage kv_heads with heads / kv_heads at least {old} or "
            f"dividing {old}",
        )


def width_unshared(op: str, src: Shape, out: Shape) -> None:
    """FFN width operators work on a plain FFN; sharing or factorization must go first."""
    if out.ffn != src.ffn and (src.ffn_share > 1 or src.ffn_rank > 0):
        what = (f"shared by {src.ffn_share}" if src.ffn_share > 1
                else f"factorized (rank {src.ffn_rank})")
        first = "unshare" if src.ffn_share > 1 else "unfactor"
        raise ShapeError(
            f"`{op}` cannot grow an FFN that is {what}",
            f"put `{first}` before `{op}` in this growth step",
        )
