"""Helpers shared by the operators' static halves: argument lookup, grow-only moves,
and the grouped-query-attention rule used by the width operators."""

from __future__ import annotations

from growdsl.ir import ArgValue
from growdsl.operators.base import Param, ShapeError
from growdsl.shapes import Shape


def arg(params: dict[str, Param], args: dict[str, ArgValue], name: str) -> ArgValue | None:
    """The value of argument `name`: given, else its default (None when required and absent)."""
    return args.get(name, params[name].default)


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


def gqa_change(src: Shape, out: Shape) -> str | None:
    """Why copying heads changes which key/value head each query head reads, if it does."""
    if src.kv_heads == src.heads and out.kv_heads == out.heads:
        return None
    old = src.heads // max(src.kv_heads, 1)
    new = out.heads // max(out.kv_heads, 1)
    if old == new:
        return None
    return (f"grouped-query ratio heads/kv_heads changes {old} -> {new}: "
            "query heads read different key/value heads")


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
