"""What `growdsl sweep` writes: sweep.json (every run's curve and cost), sweep.png (validation
loss vs cumulative FLOPs, every candidate and scratch), sweep.md (a table and the best
candidate's iso-loss ladder, `growdsl.isoloss`), and the comment that heads best.grow. No torch.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from growdsl import isoloss
from growdsl.atomic import write_text
from growdsl.sweep_space import Space

if TYPE_CHECKING:
    from growdsl.sweep import Outcome, Result


def _values(o: Outcome) -> str:
    c = o.choice
    if c is None:
        return "scratch"
    warm = f", warmup after growth {c.warmup}" if c.warmup is not None else ""
    return f"factor {c.factor}, timing {c.timing:g}, schedule {c.schedule}{warm}"


def verdict(o: Outcome, scratch: Outcome) -> str:
    """How a candidate did against scratch, in words."""
    if o.cost <= 1.0 or isoloss.reach(o.curve, scratch.final) is not None:
        return (f"reached scratch's final val loss {scratch.final:.4f} with "
                f"{1 / o.cost:.2f}x fewer FLOPs" if o.cost > 0 else "reached it at once")
    return f"ended at {o.final:.4f}, {o.final - scratch.final:.4f} above scratch's {scratch.final:.4f}"


def choice_comment(spec: Path, data: Path, space: Space, steps: int, scratch: Outcome,
                   found: list[Outcome], best: Outcome) -> str:
    """The lines that head best.grow: what was tried, on what, and why this one."""
    ranked = sorted(found, key=lambda o: (o.cost, o.final))
    runner = next((o for o in ranked if o is not best), None)
    lines = [f"# Chosen by `growdsl sweep {spec.name}` on {data} ({time.strftime('%Y-%m-%d')}):",
             f"# {len(found)} candidate(s) ({space.search}) of {steps}-step proxy runs, each "
             f"beside scratch ({steps} steps, the same data).",
             f"# Best: {_values(best)}; it {verdict(best, scratch)}."]
    if runner is not None:
        lines.append(f"# Runner-up: {_values(runner)}; it {verdict(runner, scratch)}.")
    if best.cost > 1.0:
        lines.append("# No candidate reached scratch's final loss: growth did not pay at the "
                     "proxy's size; this is the closest.")
    lines.append("# Ranked by FLOPs to reach scratch's final val loss (growdsl.isoloss); "
                 "details in sweep.md beside this file.")
    return "\n".join(lines) + "\n"


def plot(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    s = result.scratch.curve
    ax.plot([p.flops for p in s], [p.loss for p in s], "k-", lw=2.2, label="scratch")
    for i, o in enumerate(sorted(result.candidates, key=lambda o: o.name)):
        best = o is result.best
        ax.plot([p.flops for p in o.curve], [p.loss for p in o.curve], "-",
                color=f"C{i % 10}", lw=2.0 if best else 1.0, alpha=1.0 if best else 0.7,
                label=o.name + (" (best)" if best else ""))
    ax.set_xlabel("cumulative training FLOPs")
    ax.set_ylabel("validation loss")
    ax.set_title("growdsl sweep: validation loss vs FLOPs")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _row(o: Outcome, scratch: Outcome) -> dict[str, Any]:
    return {"name": o.name, "choice": asdict(o.choice) if o.choice else None,
            "planned_flops": o.planned_flops, "final_val_loss": o.final, "cost": o.cost,
            "verdict": verdict(o, scratch) if o.choice else "",
            "curve": [asdict(p) for p in o.curve]}


def write(out: Path, spec: Path, result: Result, seconds: float) -> None:
    sc = result.scratch
    doc = {"spec": str(spec), "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": seconds,
           "flops_spent": result.spent, "best": result.best.name,
           "best_plan": str(result.best_plan), "scratch": _row(sc, sc),
           "candidates": [_row(o, sc) for o in result.candidates]}
    write_text(out / "sweep.json", json.dumps(doc, indent=1) + "\n")
    plot(result, out / "sweep.png")
    rungs = isoloss.ladder(sc.curve, result.best.curve)
    isoloss.plot(rungs, out / "sweep-speedup.png", f"{result.best.name} vs scratch")
    lines = [f"# growdsl sweep: {spec}", "",
             f"{len(result.candidates)} candidates and scratch, {result.spent:.3g} FLOPs, "
             f"{seconds:.0f} s. Cost = FLOPs to reach scratch's final val loss / scratch's "
             "(below 1 pays; 1 + the gap when never reached).", "",
             "| candidate | final val loss | planned FLOPs | cost | verdict |",
             "|---|---|---|---|---|",
             f"| scratch | {sc.final:.4f} | {sc.planned_flops:.3g} | 1 | |"]
    for o in sorted(result.candidates, key=lambda o: (o.cost, o.final)):
        lines.append(f"| {o.name} | {o.final:.4f} | {o.planned_flops:.3g} | {o.cost:.3f} | "
                     f"{verdict(o, sc)} |")
    lines += ["", f"## Iso-loss ladder: {result.best.name} (best) vs scratch", "",
              *isoloss.markdown(rungs, ("scratch", result.best.name)), "",
              "![val loss vs FLOPs](sweep.png)", "", "![speedup vs loss](sweep-speedup.png)", "",
              f"Best plan at full size: {result.best_plan.name}", ""]
    write_text(out / "sweep.md", "\n".join(lines))
