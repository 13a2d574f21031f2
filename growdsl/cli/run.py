"""`growdsl run` (train a plan: grow, verify, checkpoint, report) and `growdsl demo` (fetch
the Shakespeare corpus and run specs/tiny/demo.grow beside its scratch baseline).

torch is imported inside the commands only.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from growdsl.cli import app
from growdsl.errors import GrowError
from growdsl.ir import Plan, Stage
from growdsl.source import Source

DEMO_SPEC = Path(__file__).resolve().parents[2] / "specs" / "tiny" / "demo.grow"


def baseline_plan(plan: Plan) -> Plan:
    """The target trained from scratch on the same data and the plan's FLOP budget."""
    from growdsl.flops import stage_flops, train_flops_per_step

    last = plan.stages[-1]
    budget = sum(stage_flops(s) for s in plan.stages)
    per_step = train_flops_per_step(plan.target, last.train.batch, plan.target.seq,
                                    last.train.mlm_probability)
    steps = max(1, round(budget / per_step))
    train = replace(last.train, schedule="restart", data=plan.stages[0].train.data,
                    tokenizer=plan.stages[0].train.tokenizer, seed=plan.stages[0].train.seed)
    stage = Stage(index=0, name="scratch", steps=steps,
                  tokens=steps * train.batch * plan.target.seq, shape=plan.target, train=train)
    return replace(plan, stages=(stage,), init=None)


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


def run_plan(spec: Path, out: Path | None, resume: bool, baseline: bool,
             allow_unverified: bool, data: Path | None, compile: bool, quiet: bool) -> int:
    """Run a spec (and its baseline); write the report. Returns the exit code."""
    from growdsl.driver import load

    source, plan = load(spec)
    return _run_loaded(source, plan, out or Path("runs") / spec.stem, resume, baseline,
                       allow_unverified, data, compile, quiet)


def _run_loaded(source: Source, plan: Plan, out: Path, resume: bool, baseline: bool,
                allow_unverified: bool, data: Path | None, compile: bool, quiet: bool) -> int:
    from growdsl.backend import distributed
    from growdsl.backend.executor import Options, execute
    from growdsl.backend.run_dir import unlock

    opts = Options(out=out, resume=resume, allow_unverified=allow_unverified, data=data,
                   compile=compile, quiet=quiet, hold_lock=True)
    try:
        result = execute(plan, source, opts)
        if result.interrupted:
            return 130
        base_csv = None
        if baseline:
            base = execute(baseline_plan(plan), source,
                           replace(opts, out=out / "baseline", verify_plan=False,
                                   hold_lock=False))
            if base.interrupted:
                return 130
            base_csv = out / "baseline" / "metrics.csv"
        _report(source, out, base_csv)
    finally:
        unlock(out)                 # held through the baseline and the report
    distributed.barrier()
    return 0


def _report(source: Source, out: Path, base_csv: Path | None) -> None:
    """Rank 0 writes the report; a write error is E716 on every rank."""
    from growdsl.backend import distributed
    from growdsl.backend.checkpoint import attempt
    from growdsl.backend.executor import WRITE_ERRNOS, reason_of
    from growdsl.backend.report import write_report
    from growdsl.backend.run_errors import fail

    def write() -> None:
        if distributed.current().main:
            report = write_report(out, source.path, out / "metrics.csv", base_csv)
            print(f"report: {report}")

    try:
        distributed.agree(attempt(write))
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        fail("E716", f"cannot write the report in {out}: {reason_of(exc)}",
             "free some space and run the same command with --resume: the run is complete, "
             "only the report is written again", source)


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
        ) -> None:
    """Train a plan: each stage, each growth step (verified), checkpoints, a report."""
    _setup_logging(quiet)
    try:
        code = run_plan(spec, out, resume, baseline, allow_unverified, data, compile, quiet)
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
    """Fetch the Shakespeare corpus and run specs/tiny/demo.grow with its scratch baseline
    (continuing the demo already in OUT, if any: a finished one just gets its report again)."""
    from growdsl.backend.corpus import fetch_shakespeare

    _setup_logging(False)
    try:
        corpus = fetch_shakespeare()
        print(f"corpus: {corpus}")
        code = run_plan(DEMO_SPEC, out, True, True, False, corpus, False, False)
    except GrowError as error:
        print(error.render(), file=sys.stderr)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
