"""`growdsl plan FILE`: the plan's stages, costs and verdicts as a table, JSON, DOT or
Mermaid, and optionally a plot of the schedule (no torch)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from growdsl.cli import app
from growdsl.cli.check import report, validate
from growdsl.errors import GrowError
from growdsl.plan import StageGraph, build, plot_schedule, to_dot, to_json, to_mermaid


class Format(StrEnum):
    table = "table"
    json = "json"
    dot = "dot"
    mermaid = "mermaid"


@app.command()
def plan(file: Annotated[Path, typer.Argument(help="a .grow file")],
         format: Annotated[Format, typer.Option("--format", "-f",
                                                help="table | json | dot | mermaid")
                           ] = Format.table,
         plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE.png",
                                                   help="draw the schedule to FILE.png")
                         ] = None) -> None:
    """Check a plan, then print its stages, FLOPs against scratch, and growth verdicts."""
    try:
        _, parsed = validate(file)
    except GrowError as error:
        report(error)
        raise typer.Exit(1) from None
    graph = build(parsed)
    if format is Format.table:
        print_table(graph, Console(width=max(Console().width, 140)))
    else:
        render = {Format.json: to_json, Format.dot: to_dot, Format.mermaid: to_mermaid}[format]
        sys.stdout.write(render(graph))
    if plot is not None:
        plot_schedule(graph, str(plot))


def _num(x: float) -> str:
    for unit, size in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6),
                       ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def print_table(graph: StageGraph, console: Console) -> None:
    """The rich table: a row per stage, then the growth steps' verdicts and the totals."""
    table = Table(title=graph.plan.source, title_justify="left")
    for col in ("stage", "L", "D", "H", "FFN", "seq", "params", "steps", "tokens", "FLOPs",
                "cumulative", "growth into it"):
        table.add_column(col, justify="left" if col in ("stage", "growth into it") else "right")
    for i in graph.order():
        node = graph.graph.nodes[i]
        s = node["stage"].shape
        ffn = str(s.ffn) + (f"/{s.ffn_share}" if s.ffn_share > 1 else "") + (
            f" r{s.ffn_rank}" if s.ffn_rank else "")
        seq = str(s.seq) + (f" pool {s.pool}" if s.pool > 1 else "")
        name = node["stage"].name + (f" (x{s.submodels} sub)" if s.submodels > 1 else "")
        table.add_row(name, str(s.layers), str(s.hidden), str(s.heads), ffn, seq,
                      _num(node["params"]), _num(node["steps"]), _num(node["tokens"]),
                      _num(node["flops"]), _num(node["cum_flops"]), _into(graph, i))
    console.print(table)
    for a, b in sorted(graph.graph.edges):
        result = graph.graph.edges[a, b]["result"]
        for call, _, _, verdict in result.ops if result else ():
            console.print(f"  {graph.plan.stages[a].name} -> {graph.plan.stages[b].name} "
                          f"[bold]{call.name}[/bold]: {verdict.kind} ({verdict.reason})",
                          highlight=False)
    console.print(f"total {_num(graph.total_flops)} FLOPs, {_num(graph.total_tokens)} tokens, "
                  f"{_num(graph.total_steps)} steps; scratch {_num(graph.scratch_flops)} FLOPs; "
                  f"speedup {graph.speedup:.3f}x (saving {graph.saving:.1f}%)", highlight=False)


def _into(graph: StageGraph, index: int) -> str:
    preds = list(graph.graph.predecessors(index))
    if not preds:
        return ""
    result = graph.graph.edges[preds[0], index]["result"]
    if result is None:
        return "(none needed)"
    ops = ", ".join(call.name for call, *_ in result.ops)
    return f"{ops}: {result.verdict.kind}" if result.verdict else ops
