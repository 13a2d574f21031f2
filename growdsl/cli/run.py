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

import click

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
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="output directory (default: runs/<spec name>)")
@click.option("--resume/--no-resume", default=False,
              help="continue from the newest complete checkpoint")
@click.option("--baseline/--no-baseline", default=False,
              help="also train the plan's reference run, `scratch` (the target from scratch "
                   "on the same data, for the plan's steps or its `scratch` statement's)")
@click.option("--allow-unverified/--no-allow-unverified", default=False,
              help="run a plan that fails the planner's checks")
@click.option("--data", type=click.Path(path_type=Path), help="corpus (overrides the spec)")
@click.option("--compile/--no-compile", "compile_", default=False,
              help="torch.compile the model (CUDA)")
@click.option("-q", "--quiet", is_flag=True, help="warnings only")
@click.option("--report-to", help="trackers, comma-separated: tensorboard (default), wandb, "
              "mlflow, trackio; over the spec's report_to (recorded in run.json)")
@click.option("--set", "set_", multiple=True, metavar="KEY=VALUE",
              help="override a setting: train.lr=3e-4, stage2.batch=64 (recorded in run.json)")
@click.option("--drop", multiple=True, metavar="GLOB", help="leave out tensors of the `init "
              "from` checkpoint outside the model's weight map matching GLOB (repeatable)")
def run(spec: Path, out: Path | None, resume: bool, baseline: bool, allow_unverified: bool,
        data: Path | None, compile_: bool, quiet: bool, report_to: str | None,
        set_: tuple[str, ...], drop: tuple[str, ...]) -> None:
    """Train a plan: each stage, each growth step (verified), checkpoints, a report."""
    _setup_logging(quiet)
    try:
        done = api.run(spec, out=out, resume=resume, baseline=baseline,
                       allow_unverified=allow_unverified, data=data, compile=compile_,
                       quiet=quiet, report_to=_names(report_to), overrides=set_, drop=drop)
        code = _finish(done)
    except GrowError as error:
        if _rank() == 0:
            print(error.render(), file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        if "LOCAL_RANK" in os.environ:      # torchrun: leave the process group cleanly
            from growdsl.backend import distributed

            distributed.shutdown()
    raise SystemExit(code)


@app.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"),
              show_default=True, help="output directory")
def demo(out: Path) -> None:
    """Fetch the Shakespeare corpus and run the packaged demo spec beside its reference run
    (continuing the demo already in OUT, if any: a finished one just gets its report again)."""
    from growdsl.backend.corpus import fetch_shakespeare

    _setup_logging(False)
    try:
        corpus = fetch_shakespeare()
        print(f"corpus: {corpus}")
        code = _finish(api.run(DEMO_SPEC, out=out, resume=True, baseline=True, data=corpus))
    except GrowError as error:
        print(error.render(), file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(code)
