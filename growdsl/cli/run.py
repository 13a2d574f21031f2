"""`growdsl run` (train a plan: grow, verify, checkpoint, report) and `growdsl demo` (fetch
the Shakespeare corpus and run the packaged `growdsl/specs/demo.grow` beside its scratch
baseline): thin layers over `growdsl.api.run`.

torch is imported inside the commands only.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from growdsl import api
from growdsl.cli import app
from growdsl.errors import GrowError

DEMO_SPEC = Path(__file__).resolve().parents[1] / "specs" / "demo.grow"   # in the package


class _Stderr(logging.StreamHandler):
    """Writes to the CURRENT sys.stderr, so that lines go above a live progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _rank() -> int:
    """This process's rank under torchrun (0 otherwise), without importing torch."""
    return int(os.environ.get("RANK", "0")) if "LOCAL_RANK" in os.environ else 0


def _setup_logging(quiet: bool) -> None:
    """Log lines to stderr; under torchrun rank 0 prints, other ranks only errors."""
    logger = logging.getLogger("growdsl")
    rank = _rank()
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr(sys.stderr)
        prefix = f"[rank {rank}] " if rank else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(message)s",
                                               "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.ERROR if rank else logging.WARNING if quiet else logging.INFO)


def _names(report_to: str | None) -> tuple[str, ...] | None:
    """`--report-to a,b` as a tuple of tracker names (None: the default)."""
    if report_to is None:
        return None
    return tuple(n.strip() for n in report_to.split(",") if n.strip())


def _finish(done: api.RunResult) -> int:
    """The exit code of a run (130: interrupted), its report's path printed."""
    if done.report is not None:
        print(f"report: {done.report}")
    return 130 if done.interrupted else 0


@app.command()
def run(spec: Annotated[Path, typer.Argument(help="a .grow file")],
        out: Annotated[Path | None, typer.Option(help="output directory "
                                                 "(default: runs/<spec name>)")] = None,
        resume: Annotated[bool, typer.Option(help="continue from the newest complete "
                                             "checkpoint")] = False,
        baseline: Annotated[bool, typer.Option(help="also train the target from scratch on "
                                               "the same data and FLOPs")] = False,
        allow_unverified: Annotated[bool, typer.Option(help="run a plan that fails the "
                                                       "planner's checks")] = False,
        data: Annotated[Path | None, typer.Option(help="corpus (overrides the spec)")] = None,
        compile: Annotated[bool, typer.Option(help="torch.compile the model (CUDA)")] = False,
        quiet: Annotated[bool, typer.Option("-q", "--quiet", help="warnings only")] = False,
        report_to: Annotated[str | None, typer.Option(
            "--report-to", help="trackers, comma-separated: tensorboard (default), wandb, "
                                "mlflow, trackio")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", metavar="KEY=VALUE",
            help="override a setting: train.lr=3e-4, stage2.batch=64 (recorded in run.json)")
        ] = None,
        ) -> None:
    """Train a plan: each stage, each growth step (verified), checkpoints, a report."""
    _setup_logging(quiet)
    try:
        done = api.run(spec, out=out, resume=resume, baseline=baseline,
                       allow_unverified=allow_unverified, data=data, compile=compile,
                       quiet=quiet, report_to=_names(report_to), overrides=tuple(set_ or ()))
        code = _finish(done)
    except GrowError as error:
        if _rank() == 0:
            print(error.render(), file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        if "LOCAL_RANK" in os.environ:      # torchrun: leave the process group cleanly
            from growdsl.backend import distributed

            distributed.shutdown()
    raise typer.Exit(code)


@app.command()
def demo(out: Annotated[Path, typer.Option(help="output directory")] = Path("runs/demo"),
         ) -> None:
    """Fetch the Shakespeare corpus and run the packaged demo spec with its scratch baseline
    (continuing the demo already in OUT, if any: a finished one just gets its report again)."""
    from growdsl.backend.corpus import fetch_shakespeare

    _setup_logging(False)
    try:
        corpus = fetch_shakespeare()
        print(f"corpus: {corpus}")
        code = _finish(api.run(DEMO_SPEC, out=out, resume=True, baseline=True, data=corpus))
    except GrowError as error:
        print(error.render(), file=sys.stderr)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
