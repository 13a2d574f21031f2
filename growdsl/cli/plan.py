"""`growdsl plan FILE`: the plan's stages, costs and verdicts as a table, JSON, DOT or
Mermaid, and optionally a plot of the schedule (no torch). A `--plot` path is checked before
the plan is; the plot is drawn before anything is printed, so a failed write prints nothing
but its diagnostic."""

from __future__ import annotations

import sys
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from growdsl import gstack
from growdsl.cli import app
from growdsl.cli.check import report
from growdsl.errors import Diagnostic, GrowError
from growdsl.keys import format_count
from growdsl.operators.base import VERDICT_WORDS
from growdsl.source import Source

if TYPE_CHECKING:       # rich and the stage graph (networkx) load when `plan` runs
    from rich.console import Console

    from growdsl.plan import StageGraph


class Format(StrEnum):
    table = "table"
    json = "json"
    dot = "dot"
    mermaid = "mermaid"


PLOT_FORMATS = ("png", "svg", "pdf")


@app.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "-f", "format_", type=click.Choice([f.value for f in Format]),
              default=Format.table.value, show_default=True, help="table | json | dot | mermaid")
@click.option("--plot", type=click.Path(path_type=Path), metavar="FILE.png",
              help="draw the schedule to FILE (.png, .svg or .pdf)")
@click.option("--memory", is_flag=True, help="print each stage's peak memory per device instead")
@click.option("--device", help="size the run for this device (h100-80gb, ..., or 80GiB)")
@click.option("--world", type=click.IntRange(min=1), help="devices the run is sharded over")
def plan(file: Path, format_: str, plot: Path | None, memory: bool, device: str | None,
         world: int | None) -> None:
    """Check a plan, then print its stages, FLOPs against scratch, and growth verdicts."""
    from growdsl.driver import validate_graph

    format = Format(format_)

    try:
        if plot is not None:
            plot_target(plot)
        if device is not None:
            device_target(file, device)
        source, graph = validate_graph(file, device, world)
        if memory and graph.plan.train.device is None:
            raise _plot_error(file, "E803", "`--memory` needs a device",
                              'give --device h100-80gb (or "80GiB"), or `device = "..."` in '
                              "the spec's train block")
        if plot is not None:
            draw(graph, plot)
    except GrowError as error:
        report(error)
        raise SystemExit(1) from None
    if memory or format is Format.table:
        from rich.console import Console

    if memory:
        from growdsl.cli.memory_table import print_memory

        print_memory(graph.plan, Console(width=max(Console().width, 140)))
    elif format is Format.table:
        print_table(graph, Console(width=max(Console().width, 140)))
    else:
        from growdsl.plan import to_dot, to_json, to_mermaid

        render = {Format.json: to_json, Format.dot: to_dot, Format.mermaid: to_mermaid}[format]
        sys.stdout.write(render(graph))
    print_guideline(graph, source, sys.stdout if format is Format.table else sys.stderr)


def print_guideline(graph: StageGraph, source: Source, stream: TextIO) -> None:
    """Decoder plans: the G_stack guideline's d (growdsl.gstack), and a note when a 4x
    stack from one small stage strays far from it (to stderr unless the output is the table)."""
    if graph.plan.target.family not in gstack.DECODER_FAMILIES:
        return
    g = gstack.for_plan(graph.plan)
    print(gstack.summary(g), file=stream)
    found = gstack.note(graph.plan, g)
    if found is not None:
        print(replace(found, source=source).render(), file=stream)


def _plot_error(path: Path, code: str, message: str, help: str | None = None) -> GrowError:
    return GrowError([Diagnostic(code=code, message=message, help=help,
                                 source=Source(path=str(path), text=""))])


def device_target(file: Path, device: str) -> None:
    """E803 for a `--device` that names no known device."""
    from growdsl.devices import problem

    found = problem(device)
    if found is not None:
        raise _plot_error(file, "E803", f"--device: {found[0]}", found[1])


def plot_target(path: Path) -> None:
    """Refuse a `--plot` path that cannot be written before any work is done: an unknown
    format (E705), a directory, or a missing parent directory (E704)."""
    suffix = path.suffix.lower().lstrip(".")
    if path.is_dir():
        raise _plot_error(path, "E704", "cannot write the plot: this is a directory",
                          f"name a file in it, e.g. {path / 'schedule.png'}")
    if suffix not in PLOT_FORMATS:
        raise _plot_error(path, "E705", f"cannot draw the plot as "
                          f"{'.' + suffix if suffix else 'a file with no suffix'}",
                          "end the file name in " + ", ".join(f".{f}" for f in PLOT_FORMATS))
    if not path.parent.is_dir():
        raise _plot_error(path, "E704", f"cannot write the plot: no directory {path.parent}",
                          "create the directory first, or name a file in an existing one")


def draw(graph: StageGraph, path: Path) -> None:
    """The schedule plot, with a failed write (permissions, full disk) as E704."""
    try:
        from growdsl.plan import plot_schedule

        plot_schedule(graph, str(path))
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _plot_error(path, "E704", f"cannot write the plot: {reason}") from None


def print_table(graph: StageGraph, console: Console) -> None:
    """The rich table: a row per stage, then the growth steps' verdicts and the totals."""
    from rich.table import Table

    table = Table(title=graph.plan.source, title_justify="left")
    for col in ("stage", "L", "D", "H", "FFN", "seq", "params", "steps", "tokens", "FLOPs",
                "cumulative", "growth into it"):
        table.add_column(col, justify="left" if col in ("stage", "growth into it") else "right")
    for node in graph.nodes():
        s = node.stage.shape
        ffn = str(s.ffn) + (f"/{s.ffn_share}" if s.ffn_share > 1 else "") + (
            f" r{s.ffn_rank}" if s.ffn_rank else "")
        seq = str(s.seq) + (f" pool {s.pool}" if s.pool > 1 else "")
        name = node.stage.name + (f" (x{s.submodels} sub)" if s.submodels > 1 else "")
        n = format_count
        table.add_row(name, str(s.layers), str(s.hidden), str(s.heads), ffn, seq,
                      n(node.params), n(node.steps), n(node.tokens), n(node.flops),
                      n(node.cum_flops), _into(graph, node.stage.index))
    console.print(table)
    for a, b in graph.edges():
        result = graph.edge(a, b)
        for op in result.ops if result else ():
            console.print(f"  {graph.plan.stages[a].name} -> {graph.plan.stages[b].name} "
                          f"[bold]{op.call.name}[/bold]: {VERDICT_WORDS[op.verdict.kind]} "
                          f"({op.verdict.reason})", highlight=False)
    n = format_count
    console.print(f"total {n(graph.total_flops)} FLOPs, {n(graph.total_tokens)} tokens, "
                  f"{n(graph.total_steps)} steps; scratch {n(graph.scratch_flops)} FLOPs; "
                  f"speedup {graph.speedup:.3f}x (saving {graph.saving:.1f}%)", highlight=False)
    console.print(f"scratch: {graph.scratch}", highlight=False)


def _into(graph: StageGraph, index: int) -> str:
    if graph.preceding(index) is None:
        return ""
    result = graph.growth_into(index)
    if result is None:
        return "(none needed)"
    ops = ", ".join(op.call.name for op in result.ops)
    return f"{ops}: {VERDICT_WORDS[result.verdict.kind]}" if result.verdict else ops
