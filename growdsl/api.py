"""growdsl as a library: the functions the CLI, the benchmarks and users' scripts call.

Every function is typed and takes its options by keyword. Loading, checking and planning
never import torch; `grow`, `grow_checkpoint` and `run` import the backend when called.

>>> import growdsl
>>> spec = growdsl.load(text='''
... model gpt2(layers=4, hidden=64, heads=2, seq=32, vocab=256)
... train { batch = 8 }
... stage 100: depth=L/2 -> stack
... stage 100:
... ''')
>>> growdsl.check(spec)
[]
>>> graph = growdsl.analyse(spec)
>>> [graph.plan.stages[i].shape.layers for i in graph.order()]
[2, 4]
>>> graph.growth_into(1).verdict.kind      # stacking changes the function
'none'
>>> round(graph.speedup, 3)                   # FLOPs of the target trained as long
1.329
>>> graph.scratch
"the target trained from scratch for the plan's 200 steps of 8 x 32 tokens (the default)"
>>> bad = growdsl.load(text="model gpt2(layers=4, hidden=64, heads=2)\\nstage 10: depth=L/2\\nstage 10:")
>>> [(d.code, d.message) for d in growdsl.check(bad)]
[('E411', 'stage1 -> stage2 changes layers 2 -> 4, but stage1 has no growth step')]
>>> print(growdsl.check(bad)[0].render())
<string>:2:1: error[E411]: stage1 -> stage2 changes layers 2 -> 4, but stage1 has no growth step
   2 | stage 10: depth=L/2
     | ^^^^^^^^^^^^^^^^^^^
  help: end stage1 with `-> stack`
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from growdsl import reference
from growdsl.driver import load as _load_file
from growdsl.driver import load_text
from growdsl.errors import Diagnostic, GrowError
from growdsl.ir import Growth, Plan
from growdsl.overrides import load_with_overrides
from growdsl.shapes import Shape
from growdsl.source import Source

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from growdsl.operators import OpResult
    from growdsl.plan import StageGraph

log = logging.getLogger("growdsl")


@dataclass(frozen=True, kw_only=True, slots=True)
class Spec:
    """A loaded plan: its IR and the text it came from (for located diagnostics and the
    paths it names, which are relative to the spec's folder)."""

    source: Source
    plan: Plan

    @property
    def name(self) -> str:
        """The spec's file name without `.grow` (`runs/<name>` is its default output)."""
        return Path(self.source.path).stem


def load(path: str | Path | None = None, *, text: str | None = None,
         name: str = "<string>") -> Spec:
    """Read and lower a plan from a `.grow` file, or from `text` (reported as `name`, whose
    folder relative paths in the text are taken from). GrowError lists every mistake."""
    if (path is None) == (text is None):
        raise TypeError("load() takes a path or text=..., not both")
    if path is not None:
        source, plan = _load_file(path)
    else:
        assert text is not None
        source, plan = load_text(text, name)
    return Spec(source=source, plan=plan)


def check(spec: Spec) -> list[Diagnostic]:
    """Every planner check on the plan: the errors that keep it from running, located (empty
    when the plan may run). `growdsl check` prints these."""
    from growdsl import gate  # the planner's passes: loaded when a plan is checked

    return gate.blocking(spec.plan, spec.source)[1]


def analyse(spec: Spec) -> StageGraph:
    """What `growdsl plan` prints: the checked stage graph with every stage's shape, steps,
    tokens and FLOPs, each growth step's verdicts, and the totals against the plan's
    reference run (`total_flops`, `scratch_flops`, `speedup`, `saving`; `scratch` says which
    run that is: growdsl.reference). GrowError if a check fails."""
    from growdsl import gate

    graph, errors = gate.blocking(spec.plan, spec.source)
    if errors:
        raise GrowError(errors)
    return graph


def growth_step(src: Shape, *, to: str, ops: str, seed: int | None = None,
                bare: bool = False) -> tuple[Shape, Growth]:
    """The target shape and growth step that `to` and `ops` (the `.grow` syntax of a stage
    shape and a growth step, as `growdsl grow --to --ops` takes them) make of `src`
    (`bare`: a model without its LM head), walked through the operators
    (`growdsl.grow_step.plan_grow`): GrowError, located in `--to` / `--ops`, if they do not
    apply.

    >>> from growdsl.shapes import PRESETS
    >>> dst, growth = growth_step(PRESETS["bert-base"], to="depth=2*L", ops="stack")
    >>> dst.layers, [op.name for op in growth.ops]
    (24, ['stack'])
    >>> growth_step(PRESETS["bert-base"], to="depth=L/2", ops="stack")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    growdsl.errors.GrowError: --ops:1:1: error[E410]: `stack` grows layers, but the target ...
       1 | stack
         | ^^^^^
    ...
    """
    from growdsl.grow_step import plan_grow

    dst, growth, _final, _results = plan_grow(to, ops, src, bare=bare)
    if seed is not None:
        growth = replace(growth, seed=seed)
    return dst, growth


def grow(model: PreTrainedModel, *, to: str, ops: str, seed: int | None = None
         ) -> PreTrainedModel:
    """A new model grown from an in-memory Hugging Face model (same dtype and device); the
    original is left as it was. GrowError for a step the model's shape cannot take."""
    from growdsl.backend.models import shape_of
    from growdsl.backend.surgery import grow_model

    dst, growth = growth_step(shape_of(model.config), to=to, ops=ops, seed=seed)
    return grow_model(model, dst, growth)[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class Grown:
    """A checkpoint grown by `grow_checkpoint`."""

    src: Shape                      # the checkpoint's shape
    shape: Shape                    # the grown one
    steps: list[OpResult]           # per operator: call, shapes before and after, verdict
    layout: str                     # the checkpoint's layout, described
    head: bool                      # a full model (with its head), not a bare one
    dropped: list[str]              # stored tensors left out: known inert, or asked by `drop`
    written: int                    # bytes written
    seed: int                       # the growth step's seed (random maps)


def grow_checkpoint(src: str | Path, out: str | Path, *, to: str, ops: str,
                    seed: int | None = None, drop: tuple[str, ...] = ()) -> Grown:
    """Grow a local Hugging Face checkpoint folder into `out`, one tensor at a time
    (`growdsl grow`). `drop`: globs of stored tensors outside the family's weight map to
    leave out (`grow --drop`; without them such tensors are refused, E742, unless the family
    knows them to be inert). GrowError when growdsl cannot read the checkpoint or the step
    does not apply to it."""
    from contextlib import ExitStack

    from growdsl.backend.streaming import grow_checkpoint as stream
    from growdsl.backend.streaming import open_checkpoint

    src, out = Path(src), Path(out)
    with ExitStack() as stack:
        checkpoint = open_checkpoint(stack, src, tuple(drop))
    dst, growth = growth_step(checkpoint.shape, to=to, ops=ops, seed=seed,
                              bare=not checkpoint.layout.head)
    final, steps, _config, written = stream(src, out, dst, growth, drop=tuple(drop))
    return Grown(src=checkpoint.shape, shape=final, steps=steps,
                 layout=checkpoint.layout.describe(), head=bool(checkpoint.layout.head),
                 dropped=list(checkpoint.dropped),
                 written=written, seed=growth.seed)


def baseline_plan(plan: Plan) -> Plan:
    """The plan `run(baseline=True)` trains beside `plan`: its reference run, `scratch`
    (`growdsl.reference`: the target from scratch for the plan's steps, or for the length
    its `scratch` statement states), on the same data.

    >>> spec = load(text="model gpt2(layers=4, hidden=64, heads=2, seq=32, vocab=256)\\n"
    ...             "stage 100: depth=L/2 -> stack\\nstage 100:\\nscratch 1k steps")
    >>> [(s.name, s.steps, s.shape.layers) for s in baseline_plan(spec.plan).stages]
    [('scratch', 1000, 4)]
    """
    return reference.baseline(plan)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunResult:
    """A finished (or interrupted) `run`."""

    out: Path                       # the run's folder: metrics.csv, stages/, checkpoints/
    interrupted: bool               # Ctrl-C: a checkpoint was saved, `resume=True` continues
    report: Path | None             # report.md (None when interrupted, or not rank 0)


def run(spec: Spec | str | Path, *, out: str | Path | None = None, resume: bool = False,
        baseline: bool = False, allow_unverified: bool = False, data: str | Path | None = None,
        compile: bool = False, quiet: bool = False,
        report_to: tuple[str, ...] | None = None, overrides: tuple[str, ...] = (),
        drop: tuple[str, ...] = ()) -> RunResult:
    """Train a plan (`growdsl run`): each stage, each growth step verified, checkpoints,
    metrics, and a report (with `baseline`, beside the plan's reference run, `scratch`:
    `baseline_plan`). The plan must pass the planner's checks (`gate.admit`). `report_to`
    names the experiment trackers (tensorboard, wandb, mlflow, trackio), over the spec's
    `report_to` (default: TensorBoard when installed; run.json records both);
    `metrics.csv` is always written. `overrides` are `--set KEY=VALUE` texts
    (`growdsl.overrides`) applied to a spec given by path, and recorded in the run's
    `run.json`. `drop`: globs of tensors stored in the `init from` checkpoint outside the
    model's weight map to leave out (`run --drop`; without them such tensors are refused,
    E742, unless the family knows them to be inert). GrowError for a user mistake."""
    from growdsl import gate
    from growdsl.backend import distributed
    from growdsl.backend.executor import Options, execute
    from growdsl.backend.run_dir import unlock
    from growdsl.backend.trackers import check_names

    if isinstance(spec, Spec):
        if overrides:
            raise TypeError("run(): overrides need a spec given by path, not a loaded Spec")
        loaded = spec
    else:
        source, plan = load_with_overrides(spec, list(overrides))
        loaded = Spec(source=source, plan=plan)
    folder = Path(out) if out is not None else Path("runs") / loaded.name
    gate.admit(loaded.plan, loaded.source, allow_unverified=allow_unverified)
    trackers = tuple(report_to) if report_to is not None else loaded.plan.train.report_to
    if trackers is not None:
        try:
            check_names(trackers)
        except GrowError as error:
            raise GrowError([replace(d, source=loaded.source) for d in error.diagnostics]
                            ) from None
    opts = Options(out=folder, resume=resume, data=Path(data) if data is not None else None,
                   compile=compile, quiet=quiet, hold_lock=True,
                   report_to=tuple(report_to) if report_to is not None else None,
                   overrides=tuple(overrides), drop=tuple(drop))
    report: Path | None = None
    try:
        result = execute(loaded.plan, loaded.source, opts)
        if result.interrupted:
            return RunResult(out=folder, interrupted=True, report=None)
        base_csv = None
        if baseline:
            log.info("baseline: %s", reference.describe(loaded.plan))
            base = execute(baseline_plan(loaded.plan), loaded.source,
                           replace(opts, out=folder / "baseline", hold_lock=False))
            if base.interrupted:
                return RunResult(out=folder, interrupted=True, report=None)
            base_csv = folder / "baseline" / "metrics.csv"
        report = _report(loaded.source, folder, base_csv, reference.describe(loaded.plan))
    finally:
        unlock(folder)              # held through the baseline and the report
    distributed.barrier()
    return RunResult(out=folder, interrupted=False, report=report)


def _report(source: Source, out: Path, base_csv: Path | None, scratch: str) -> Path | None:
    """Rank 0 writes the report (its path returned there); a write error is E716 on every
    rank."""
    from growdsl.backend import distributed
    from growdsl.backend.checkpoint import attempt
    from growdsl.backend.report import write_report
    from growdsl.backend.run_errors import write_errors

    written: list[Path] = []

    def write() -> None:
        if distributed.current().main:
            written.append(write_report(out, source.path, out / "metrics.csv", base_csv,
                                        scratch=scratch))

    with write_errors(out, "free some space and run the same command with --resume: the run "
                      "is complete, only the report is written again", source,
                      what=f"the report in {out}"):
        distributed.agree(attempt(write))
    return written[0] if written else None
