"""`growdsl sweep SPEC --data CORPUS`: run the proxy plans of the spec's `sweep { }` block
beside scratch and write the best plan (growdsl.sweep; docs/sweep.md). torch is imported
only by the runs it starts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from growdsl.cli import app
from growdsl.cli.check import report
from growdsl.errors import GrowError


@app.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="corpus the proxy runs train on")
@click.option("--out", type=click.Path(path_type=Path),
              help="output directory (default: runs/<spec name>-sweep); rerun to resume")
@click.option("--jobs", type=click.IntRange(min=1),
              help="proxy runs at a time (default: the block's `jobs`, else the CPU count)")
def sweep(spec: Path, data: Path, out: Path | None, jobs: int | None) -> None:
    """Try the growth timings, factors and LR policies the spec leaves open, on short proxy
    runs within its budget; plot them against scratch and write the best plan."""
    from growdsl.sweep import run_sweep
    from growdsl.sweep_report import verdict

    out = out or Path("runs") / f"{spec.stem}-sweep"
    try:
        result = run_sweep(spec, out, data.resolve(), jobs)
    except GrowError as error:
        report(error)
        raise SystemExit(1) from None
    except RuntimeError as error:          # a proxy run failed: its stderr says why
        print(f"growdsl sweep: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"scratch: final val loss {result.scratch.final:.4f}")
    for o in sorted(result.candidates, key=lambda o: (o.cost, o.final)):
        print(f"{o.name}: {verdict(o, result.scratch)}")
    print(f"best: {result.best.name} -> {result.best_plan} "
          f"({result.spent:.3g} FLOPs spent; {out / 'sweep.md'}, {out / 'sweep.png'})")
