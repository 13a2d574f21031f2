"""`growdsl run`: walk a checked plan -- train, grow, verify, rebuild the optimizer, train.

1. The plan was admitted by the caller (`growdsl.gate.admit`: the planner's checks, or
   `--allow-unverified`, loudly); the output directory is locked (one writer) and claimed
   for this run (`run_dir`).
2. `start` starts the run fresh, or with `--resume` from the newest complete checkpoint
   (mid-stage, or at a stage end just before its growth step) whose model is the plan's;
   the metrics log is rebuilt from the checkpoint's copy. The corpus and tokenizer paths
   come resolved in the plan (lowering resolved them).
3. Each stage trains (`train.steps`), evaluating and checkpointing at the spec's intervals;
   at its end: a validation loss, a checkpoint, and a plain HF model in `stages/`.
4. Between stages `transition` grows the weights, compares the grown model with the old
   one on a held-out batch (a `preserve` step that does not preserve stops the run, E718),
   rebuilds the optimizer per the next stage's `optimizer_state` (reset / transfer /
   transform) and restarts or continues its schedule; the difference is logged.
5. Under torchrun (`distributed`, `sharded`): the model is sharded with FSDP2, each rank
   trains on its slice of every batch, rank 0 alone writes the log, metrics, reports and
   the checkpoint's shared files, and growth runs on the shards.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from growdsl import gate
from growdsl.backend import checkpoint as ckpt
from growdsl.backend import distributed, faults, sharded
from growdsl.backend.corpus import cache_dir
from growdsl.backend.data import Corpus, prepare_corpus
from growdsl.backend.equivalence import Diff
from growdsl.backend.models import save_model
from growdsl.backend.progress import stage_progress
from growdsl.backend.report import Metrics
from growdsl.backend.run_dir import claim, lock, plan_key, resumable, unlock
from growdsl.backend.run_errors import fail, reason_of, with_source, write_errors
from growdsl.backend.start import data_path, fresh, resumed, tokenizer_path
from growdsl.backend.state import RunState
from growdsl.backend.train import Device, Loop, evaluate, pick_device, steps
from growdsl.backend.transition import transition
from growdsl.errors import GrowError
from growdsl.flops import train_flops_per_step
from growdsl.ir import Plan, Stage
from growdsl.source import Source

log = logging.getLogger("growdsl.run")


@dataclass(frozen=True, kw_only=True, slots=True)
class Options:
    """Command-line choices of one run."""

    out: Path
    resume: bool = False
    data: Path | None = None
    compile: bool = False
    quiet: bool = False
    report_to: tuple[str, ...] | None = None    # `--report-to` (None: the spec's `report_to`)
    drop: tuple[str, ...] = ()  # `--drop` globs: stored tensors of `init from` to leave out
    overrides: tuple[str, ...] = ()      # `--set KEY=VALUE` texts, recorded in run.json
    hold_lock: bool = False     # keep `out` locked after returning (the caller unlocks it)

    def trackers(self, plan: Plan) -> tuple[str, ...] | None:
        """The trackers the run reports to: `--report-to` over the spec's `report_to`
        (None: neither names any, TensorBoard when installed)."""
        return self.report_to if self.report_to is not None else plan.train.report_to

    def trackers_asked(self, plan: Plan) -> dict[str, list[str] | None]:
        """Where the trackers came from, for run.json: the spec's and the command line's."""
        spec, cli = plan.train.report_to, self.report_to
        return {"spec": list(spec) if spec is not None else None,
                "command_line": list(cli) if cli is not None else None}


@dataclass(kw_only=True)
class Run:
    """Everything a running plan holds; `state` is what a checkpoint records."""

    plan: Plan
    source: Source
    opts: Options
    corpus: Corpus
    tokenizer: PreTrainedTokenizerBase
    dev: Device
    metrics: Metrics
    model: PreTrainedModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    state: RunState
    stop: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Result:
    out: Path
    state: RunState
    interrupted: bool


def execute(plan: Plan, source: Source, opts: Options) -> Result:
    """Run `plan` (admitted by `growdsl.gate.admit`) into `opts.out` (module docstring)."""
    hf_logging.disable_progress_bar()
    out = opts.out
    if distributed.under_torchrun():
        distributed.init_from_env()
    key = plan_key(plan, opts.data)

    def take() -> bool:
        took = False
        with write_errors(out, "choose a writable --out with free space", source):
            try:
                took = lock(out, source)
                claim(out, key, opts.resume, source, opts.overrides,
                      opts.trackers_asked(plan), opts.drop)
            except BaseException:
                if took:
                    unlock(out)
                raise
        return took

    took = bool(distributed.on_main_first(take, others=False))
    try:
        return _execute(plan, source, opts, key)
    finally:
        if took and not opts.hold_lock:
            unlock(out)


def _execute(plan: Plan, source: Source, opts: Options, key: str) -> Result:
    out = opts.out
    d = distributed.current()
    handler: logging.Handler = (_QuietFileHandler(out / "run.log") if d.main
                                else logging.NullHandler())
    logging.getLogger("growdsl").addHandler(handler)
    if d.active and d.main:
        log.info("torchrun: %d rank(s), %s, FSDP2", d.world, d.backend)
    try:
        with write_errors(out, "free some space (or make it writable) and continue with "
                          "--resume; the last complete checkpoint is kept", source):
            run = start(plan, source, opts, key)
            with sigint_flag(run):
                _walk(run)
            run.metrics.close()
        return Result(out=out, state=run.state, interrupted=run.stop)
    except GrowError as error:
        raise with_source(error, source) from None
    finally:
        logging.getLogger("growdsl").removeHandler(handler)
        handler.close()


class _QuietFileHandler(logging.FileHandler):
    """`run.log`: a line it cannot write (a full disk) is dropped without the logging
    module's traceback; the write that matters fails on its own, as E716."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _walk(run: Run) -> None:
    stages = run.plan.stages
    while True:
        stage = stages[run.state.stage]
        if not run.state.stage_done:
            train_stage(run, stage)
            if run.stop:
                return
        if run.state.stage + 1 >= len(stages):
            return
        with timed(run):
            grow(run, stage, stages[run.state.stage + 1])


def start(plan: Plan, source: Source, opts: Options, key: str) -> Run:
    """Corpus, device, and the model / optimizer / schedule / state: fresh or resumed."""
    first = plan.stages[0]
    d = distributed.current()
    seed = first.train.seed + d.rank     # each rank its own RNG stream (dropout)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    gate.split(plan, source, d.world)
    ready = distributed.on_main_first(lambda: prepare_corpus(
        data_path(plan, source, opts.data), tokenizer_path(plan),
        plan.target.family, plan.target.vocab, max(s.shape.seq for s in plan.stages),
        first.train.seed, cache_dir()))
    assert ready is not None
    corpus, tok = ready
    dev = pick_device(first.train.precision, opts.compile)
    if d.active and dev.device.type == "cuda":
        dev = dataclasses.replace(dev, device=torch.device("cuda", d.local_rank))
    found = None
    if opts.resume:
        found = distributed.broadcast(resumable(plan, opts.out, key) if d.main else None)
    began = (fresh(plan, source, dev, key, opts.drop) if found is None
             else resumed(plan, found, dev))
    state = began.state
    metrics = (Metrics(opts.out, resume_rows=state.log_rows, resume_step=state.global_step,
                       write=d.main, saved=found / "metrics.csv" if found else None,
                       report_to=opts.trackers(plan))
               if opts.resume else Metrics(opts.out, write=d.main, report_to=opts.trackers(plan)))
    run = Run(plan=plan, source=source, opts=opts, corpus=corpus, tokenizer=tok, dev=dev,
              metrics=metrics, model=began.model, optimizer=began.optimizer,
              scheduler=began.scheduler, state=state)
    if found is not None and state.stage_done:      # killed between checkpoint and model
        save_stage_dir(run, plan.stages[state.stage], only_if_missing=True)
    return run


def train_stage(run: Run, stage: Stage) -> None:
    """Train `stage` to its end: periodic evaluation and checkpoints, then the stage end."""
    train = stage.train
    step_flops = train_flops_per_step(stage.shape, train.batch, stage.shape.seq,
                                      train.mlm_probability)
    d = distributed.current()
    loop = Loop(model=run.model, optimizer=run.optimizer, scheduler=run.scheduler,
                corpus=run.corpus, stage=stage, dev=run.dev, state=run.state,
                step_flops=step_flops, rank=d.rank, world=d.world)
    with stage_progress(stage, run.state.step, run.opts.quiet or not d.main) as advance:
        for done in steps(loop, lambda: distributed.any_true(run.stop)):
            run.state = s = done.state
            log_row(run, "train", stage=stage.index, step=s.step, global_step=s.global_step,
                    tokens=s.tokens, flops=s.flops, wall=s.wall, lr=done.lr, loss=done.loss,
                    tokens_per_s=done.tokens_per_s, mfu="" if done.mfu is None else done.mfu)
            advance(done)
            faults.point(f"step-{s.global_step}")
            if d.active:
                faults.point(f"rank{d.rank}-step-{s.global_step}")
            if s.step == stage.steps:
                break
            if train.eval_every and s.global_step % train.eval_every == 0:
                with timed(run):
                    log_val(run, stage)
            if train.checkpoint_every and s.step % train.checkpoint_every == 0:
                with timed(run):
                    save_checkpoint(run)
            loop.state = run.state
    if stage.steps == 0:        # a starting shape (e.g. `init from`), grown at once
        run.state = dataclasses.replace(run.state, stage_done=True)
        return
    run.stop = distributed.any_true(run.stop)
    if run.stop:
        save_checkpoint(run)
        log.warning("interrupted at step %d; checkpoint saved, continue with --resume",
                    run.state.global_step)
        return
    with timed(run):
        log_val(run, stage)
    run.state = dataclasses.replace(run.state, stage_done=True)
    with timed(run):
        save_checkpoint(run)
        save_stage_dir(run, stage)


@contextmanager
def timed(run: Run) -> Iterator[None]:
    """Add the block's wall time to the run's `wall` (evaluation, growth, checkpoints: the
    `wall` column is the run's time, not only its steps'). A checkpoint records the wall
    time before its own write."""
    start = time.perf_counter()
    try:
        yield
    finally:
        run.state = dataclasses.replace(run.state,
                                        wall=run.state.wall + time.perf_counter() - start)


def log_row(run: Run, event: str, **values: Any) -> None:
    """One metrics row (rank 0 writes it); a write error is E716 on every rank at once."""
    with disk_errors("the metrics log", run):
        distributed.agree(ckpt.attempt(lambda: run.metrics.log(event, **values)))


def log_val(run: Run, stage: Stage) -> float:
    s = run.state
    val = evaluate(run.model, run.corpus, stage, run.dev)
    log_row(run, "val", stage=stage.index, step=s.step, global_step=s.global_step,
            tokens=s.tokens, flops=s.flops, wall=s.wall, val_loss=val)
    log.info("stage %s step %d: val loss %.4f", stage.name, s.step, val)
    return val


@contextmanager
def disk_errors(what: str, run: Run) -> Iterator[None]:
    """Turn a full disk (or another write failure) into E716; earlier checkpoints stay,
    temporary folders go. Under torchrun the OSError is already agreed on by every rank
    (`distributed.agree`), so every rank raises E716 at once."""
    try:
        yield
    except OSError as exc:
        if distributed.current().main:
            for tmp in [*(run.opts.out / "checkpoints").glob(".tmp-*"),
                        *(run.opts.out / "stages").glob("*.tmp")]:
                shutil.rmtree(tmp, ignore_errors=True)
        fail("E716", f"cannot write {what} at step {run.state.global_step}: {reason_of(exc)}",
             "free some space (or make the folder writable) and continue with --resume; the "
             "last complete checkpoint is kept", run.source)


def save_checkpoint(run: Run) -> None:
    """A checkpoint of the run as it stands (none before a stage's first step: the previous
    one, or the start, already describes it, and the optimizer has no state yet)."""
    if run.state.step == 0:
        return
    run.state = dataclasses.replace(run.state, log_rows=run.metrics.rows)
    with disk_errors("a checkpoint", run):
        path = ckpt.save(run.opts.out / "checkpoints", run.model, run.optimizer, run.scheduler,
                         run.state, keep=run.plan.stages[run.state.stage].train.keep_checkpoints,
                         metrics=run.metrics.snapshot)
    log.info("checkpoint %s", path)


def save_stage_dir(run: Run, stage: Stage, only_if_missing: bool = False) -> Path:
    """The stage's final model as a plain HF directory (with the tokenizer)."""
    final = run.opts.out / "stages" / f"{stage.index}-{stage.name}"
    if distributed.broadcast(only_if_missing and final.exists()):
        return final
    model: PreTrainedModel | None = run.model
    if distributed.current().active:       # gathered on rank 0 (one plain HF directory)
        model = sharded.gather_plain(run.model)
    tmp = final.with_name(final.name + ".tmp")

    def write() -> None:
        if model is None:
            return
        shutil.rmtree(tmp, ignore_errors=True)
        faults.write_point("stage-dir")
        save_model(model, tmp)
        run.tokenizer.save_pretrained(str(tmp))
        old = final.with_name(final.name + ".old")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    with disk_errors(f"the model of stage {stage.name}", run):
        distributed.agree(ckpt.attempt(write))
    return final


def grow(run: Run, src: Stage, dst: Stage) -> None:
    """The growth step from `src` into `dst` (`transition`: weights, verification, optimizer,
    schedule), logged and recorded in the metrics before a failed `preserve` stops it."""
    batch = run.corpus.val_batches(src.shape.seq, min(4, src.train.batch), 1,
                                   src.train.mlm_probability)[0]
    batch = {k: v.to(run.dev.device) for k, v in batch.items()}
    s = run.state

    def record(diff: Diff, ops: str) -> None:
        log.info("growth %s -> %s: %s; max abs diff %.3g, rel %.3g", src.name, dst.name, ops,
                 diff.max_abs, diff.max_rel)
        log_row(run, "growth", stage=dst.index, step=0, global_step=s.global_step,
                tokens=s.tokens, flops=s.flops, wall=s.wall, max_abs_diff=diff.max_abs,
                max_rel_diff=diff.max_rel, note=ops)

    done = transition(run.plan, run.model, run.optimizer, src, dst, batch,
                      bf16=run.dev.autocast is not None, source=run.source, record=record)
    run.model, run.optimizer, run.scheduler = done.model, done.optimizer, done.scheduler
    run.state = dataclasses.replace(s, stage=dst.index, step=0, stage_done=False)
    faults.point(f"growth-{dst.index}")


@contextmanager
def sigint_flag(run: Run) -> Iterator[None]:
    """Ctrl-C asks the loop to stop after the current step and save a checkpoint."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(_sig: int, _frame: Any) -> None:
        if run.stop:            # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        log.warning("Ctrl-C: stopping after this step and saving a checkpoint")
        run.stop = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:          # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
