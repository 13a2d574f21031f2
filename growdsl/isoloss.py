"""Iso-loss accounting: what each of two runs spent (FLOPs, tokens, seconds) to reach a ladder
of validation-loss levels between the start and the reference (scratch) run's final loss,
and the speedup at each level. No torch.

A ratio measured at one loss level says little on a plateau, where a small shift in the
level moves it a lot; the ladder shows where a plan is ahead and where it falls behind.

Levels: `n` evenly spaced values from the reference run's first evaluation down to its final
one (the last rung is exactly scratch's final loss; the first is one step below the start,
so that both runs have to learn to reach it). A run "reaches" a level at the first
evaluation at or below it; the cost there is interpolated linearly between that evaluation
and the one before it (the first evaluation itself when it is the first), so the figures do
not jump by a whole evaluation interval. Speedup = reference cost / other run's cost (> 1:
the other run got there cheaper); None where either run never reached the level.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

COSTS = ("flops", "tokens", "wall")
LEVELS = 10


@dataclass(frozen=True, kw_only=True, slots=True)
class Point:
    """One evaluation: cumulative FLOPs, tokens, training seconds, validation loss."""

    flops: float
    tokens: float
    wall: float
    loss: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Rung:
    """One loss level: each run's cost to reach it (None: never), and the speedups."""

    level: float
    reference: Point | None
    other: Point | None

    def speedup(self, cost: str) -> float | None:
        """reference cost / other's cost for `cost` in COSTS (None if either is missing)."""
        if self.reference is None or self.other is None:
            return None
        mine = getattr(self.other, cost)
        return getattr(self.reference, cost) / mine if mine > 0 else None


def read_curve(metrics_csv: Path) -> list[Point]:
    """A run's evaluations from its `metrics.csv` (the `val` rows), in order."""
    with open(metrics_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["event"] == "val"]
    return [Point(flops=float(r["flops"]), tokens=float(r["tokens"] or 0),
                  wall=float(r["wall"] or 0), loss=float(r["val_loss"])) for r in rows]


def levels(reference: Sequence[Point], n: int = LEVELS) -> list[float]:
    """`n` levels from just below the reference's first evaluation to its final loss.

    >>> [round(x, 2) for x in levels([Point(flops=1, tokens=1, wall=1, loss=6.0),
    ...                               Point(flops=2, tokens=2, wall=2, loss=4.0)], 4)]
    [5.5, 5.0, 4.5, 4.0]
    """
    if not reference:
        return []
    start, end = reference[0].loss, reference[-1].loss
    if end >= start:                 # the reference did not learn: its final loss only
        return [end]
    return [start - (start - end) * k / n for k in range(1, n + 1)]


def reach(curve: Sequence[Point], level: float) -> Point | None:
    """The cost of first reaching `level`, interpolated from the evaluation before it."""
    for i, p in enumerate(curve):
        if p.loss <= level + 1e-12:
            if i == 0 or curve[i - 1].loss <= p.loss:
                return p
            q = curve[i - 1]
            t = (q.loss - level) / (q.loss - p.loss)
            return Point(flops=q.flops + t * (p.flops - q.flops),
                         tokens=q.tokens + t * (p.tokens - q.tokens),
                         wall=q.wall + t * (p.wall - q.wall), loss=level)
    return None


def ladder(reference: Sequence[Point], other: Sequence[Point], n: int = LEVELS) -> list[Rung]:
    """Each level's cost for the reference (scratch) and the other run."""
    return [Rung(level=x, reference=reach(reference, x), other=reach(other, x))
            for x in levels(reference, n)]


def _cost(p: Point | None, cost: str) -> str:
    if p is None:
        return "not reached"
    return f"{p.wall:.1f}" if cost == "wall" else f"{getattr(p, cost):.3g}"


def _ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def markdown(rungs: Sequence[Rung], names: tuple[str, str] = ("scratch", "plan")) -> list[str]:
    """The ladder as a markdown table: a row per level, each run's FLOPs, tokens and
    seconds, and the speedups (reference / other)."""
    ref, oth = names
    lines = [f"| val loss | {ref} FLOPs | {oth} FLOPs | FLOP speedup | {ref} tokens | "
             f"{oth} tokens | token speedup | {ref} s | {oth} s | time speedup |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rungs:
        cells = [f"{r.level:.3f}"]
        for cost in COSTS:
            cells += [_cost(r.reference, cost), _cost(r.other, cost), _ratio(r.speedup(cost))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(rungs: Sequence[Rung], path: Path, title: str = "speedup vs loss level") -> None:
    """Speedup (FLOPs, tokens, seconds) against the loss level, the harder levels right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, cost in enumerate(COSTS):
        pts = [(r.level, s) for r in rungs if (s := r.speedup(cost)) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=f"C{i}",
                label={"flops": "FLOPs", "tokens": "tokens", "wall": "seconds"}[cost])
    ax.axhline(1.0, color="grey", ls=":", lw=1)
    ax.invert_xaxis()
    ax.set_xlabel("validation loss level (lower: later in training)")
    ax.set_ylabel("speedup (scratch cost / plan cost)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
