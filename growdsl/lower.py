"""AST -> IR: the file-level lowering. Each block is lowered by its own module
(`lower_model`, `lower_train`, `lower_stages` with `lower_ops`); this one walks the file's
statements, lowers the limits, and raises every mistake together.

Every semantic mistake becomes a located diagnostic; all of a file's mistakes are reported
together. Divisibility and growth feasibility are the planner's checks (growdsl.checks);
this pass only makes the plan well-typed. Reading files is the driver's
(`growdsl.driver`): config.json files come in as `configs`.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from types import MappingProxyType

from growdsl import ast, sweep_space
from growdsl.errors import Diagnostic, did_you_mean, one_of
from growdsl.evaluate import EvalError, evaluate, whole
from growdsl.ir import Growth, Limit, Model, Plan, Scratch, Stage, Train
from growdsl.keys import LIMIT_METRICS, STAGE_SHAPE_KEYS
from growdsl.lower_common import Collector, target_env
from growdsl.lower_model import Configs, lower_model
from growdsl.lower_stages import lower_growth, lower_stages, stage_shape
from growdsl.lower_train import lower_train
from growdsl.parser import parse_fragment
from growdsl.shapes import PRESETS, Shape
from growdsl.source import NO_SPAN, Source, Span

__all__ = ["Partial", "lower", "lower_growth_cli", "lower_partial", "target_env", "within"]

# When the `model` statement is wrong, the stages are still lowered (against this stand-in
# target) so that their own mistakes are reported too; of those, only the ones that name
# no dimension of the target are kept (the others would be about the stand-in).
_STAND_IN_TARGET = Model(family="bert", shape=PRESETS["bert-base"])
_TARGET_FREE_CODES = ("E203", "E204", "E208", "E209", "E210", "E212", "E305", "E306")

# The treatments `grow --to` can remove (`width=none`, `rank=none`, `pool=none`: the
# target has no FFN sharing, factorization or pooling) and their untreated values.
_UNTREATED = {"ffn_share": 1, "ffn_rank": 0, "pool": 1}


def lower(file: ast.File, source: Source, configs: Configs = MappingProxyType({})) -> Plan:
    r"""The IR of a parsed file, or GrowError with every diagnostic found. `configs` holds
    the config.json of each `model ... from "DIR"` (see `growdsl.driver.read_configs`).

    >>> from growdsl.parser import parse
    >>> source = Source(path="m.grow", text="model gpt2\nstage 2k tokens: depth=L/2 -> stack\n"
    ...                 "stage 10: lr=1e-3")
    >>> plan = lower(parse(source), source)
    >>> [(s.name, s.shape.layers, s.steps, s.train.lr) for s in plan.stages]
    [('stage1', 6, 1, 0.0001), ('stage2', 12, 10, 0.001)]
    >>> lower(parse(Source(path="m.grow", text="model gtp2\nstage 1: warmpu=2")),
    ...       Source(path="m.grow", text=""))
    Traceback (most recent call last):
    growdsl.errors.GrowError: m.grow:1:7: error[E202]: unknown model preset `gtp2`
      help: did you mean `gpt2`?
    m.grow:2:10: error[E204]: unknown stage key `warmpu`
      help: did you mean `warmup`?
    """
    c = Collector(source)
    partial = _lower(c, file, source, configs)
    c.raise_if_any()
    assert partial.plan is not None
    return partial.plan


def lower_partial(file: ast.File, source: Source,
                  configs: Configs = MappingProxyType({})) -> Partial:
    r"""Like `lower`, but keeping what lowered when there are mistakes, so that the
    planner can still check the rest of the file (`growdsl.driver.validate_graph`).

    >>> from growdsl.parser import parse
    >>> source = Source(path="m.grow", text="model gpt2\nstage 10: warmpu=2 -> stack\nstage 5:")
    >>> partial = lower_partial(parse(source), source)
    >>> [d.code for d in partial.diagnostics], sorted(partial.tainted), len(partial.plan.stages)
    (['E204'], [0], 2)
    """
    return _lower(Collector(source), file, source, configs)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Partial:
    """A lowered file: its mistakes, and the plan when the model and every stage lowered
    (the mistakes then lie in settings left out, or in growth steps, which the planner must
    not judge: `tainted` lists the stages whose span holds a mistake)."""

    plan: Plan | None
    diagnostics: tuple[Diagnostic, ...]
    tainted: frozenset[int]


def _lower(c: Collector, file: ast.File, source: Source, configs: Configs) -> Partial:
    statements = file.statements
    models = [s for s in statements if isinstance(s, ast.ModelDecl)]
    trains = [s for s in statements if isinstance(s, ast.TrainDecl)]
    inits = [s for s in statements if isinstance(s, ast.InitDecl)]
    stages = [s for s in statements if isinstance(s, ast.StageDecl)]
    sweeps = [s for s in statements if isinstance(s, ast.SweepDecl)]
    scratches = [s for s in statements if isinstance(s, ast.ScratchDecl)]
    for kind, found in (("model", models), ("train", trains), ("init", inits),
                        ("sweep", sweeps), ("scratch", scratches)):
        for extra in found[1:]:
            c.error("E205", f"a second `{kind}` statement", extra.span,
                    f"a plan has one `{kind}`; " + ("keep one" if kind == "scratch" else
                                                    "merge them"))
    model = lower_model(c, models[0], configs) if models else None
    if not models:
        c.error("E206", "no `model` statement", statements[0].span if statements else NO_SPAN,
                "name the target, e.g. `model bert-base`")
    if not stages:
        c.error("E207", "no `stage` statement", NO_SPAN,
                "a plan trains at least one stage, e.g. `stage 100k:`")
    train = lower_train(c, trains[0].items, Train()) if trains else Train()
    out_stages = _stages(c, stages, model, train, bool(inits))
    scratch = _scratch(c, scratches[0], out_stages, model) if scratches else None
    limits = tuple(x for d in statements if isinstance(d, ast.LimitDecl)
                   if (x := _limit(c, d, stated=bool(scratches))) is not None)
    if sweeps and model is not None:        # checked here; read by `growdsl sweep`
        c.diagnostics += sweep_space.read(sweeps[0], model.shape.layers)[1]
    diagnostics = tuple(sorted(c.diagnostics, key=lambda d: (d.span.line, d.span.col)))
    if model is None or not stages or len(out_stages) != len(stages):
        return Partial(plan=None, diagnostics=diagnostics, tainted=frozenset())
    init = inits[0] if inits else None
    plan = Plan(source=source.path, model=model, train=train, stages=out_stages,
                init=c.path(init.path) if init else None,
                init_span=init.span if init else NO_SPAN, limits=limits, scratch=scratch)
    tainted = frozenset(stage.index for stage in out_stages
                        if any(within(d.span, stage.span) for d in diagnostics))
    return Partial(plan=plan, diagnostics=diagnostics, tainted=tainted)


def within(inner: Span, outer: Span) -> bool:
    """True when span `inner` starts inside span `outer`.

    >>> outer = Span(line=2, col=1, end_line=3, end_col=9)
    >>> within(Span(line=3, col=4, end_line=3, end_col=5), outer), within(NO_SPAN, outer)
    (True, False)
    """
    return bool(inner.line) and (outer.line, outer.col) <= (inner.line, inner.col) \
        <= (outer.end_line, outer.end_col)


def _stages(c: Collector, decls: list[ast.StageDecl], model: Model | None, train: Train,
            has_init: bool) -> tuple[Stage, ...]:
    """The stages against `model`, or (a wrong model) their target-free mistakes only."""
    if model is not None:
        return lower_stages(c, decls, model, train, has_init)
    before = len(c.diagnostics)
    out = lower_stages(c, decls, _STAND_IN_TARGET, train, has_init)
    c.diagnostics[before:] = [d for d in c.diagnostics[before:] if d.code in _TARGET_FREE_CODES]
    return out


def _scratch(c: Collector, decl: ast.ScratchDecl, stages: tuple[Stage, ...],
             model: Model | None) -> Scratch | None:
    """`scratch LENGTH [steps|tokens]`: the reference run's length, in steps (tokens at the
    last stage's batch and the target's sequence length, rounded up as a stage's are)."""
    try:
        length = whole(decl.length, {}, "the reference run's length", 1)
    except EvalError as exc:
        c.add(exc.diagnostic)
        return None
    if not stages or model is None:
        return None
    per_step = stages[-1].train.batch * model.shape.seq
    if decl.unit == "tokens" and length < per_step:
        c.error("E308", f"a reference run of {length:,} tokens is less than one step",
                decl.length.span, f"one step of the last stage reads {stages[-1].train.batch} x "
                f"{model.shape.seq} = {per_step:,} tokens; give the length in steps or in "
                "more tokens")
        return None
    steps = -(-length // per_step) if decl.unit == "tokens" else length
    return Scratch(steps=steps, tokens=steps * per_step, span=decl.span)


def _limit(c: Collector, decl: ast.LimitDecl, stated: bool) -> Limit | None:
    metrics = LIMIT_METRICS[decl.kind]
    if decl.metric not in metrics:
        c.error("E204", f"unknown {decl.kind} metric `{decl.metric}`", decl.metric_span,
                did_you_mean(decl.metric, metrics) or one_of(metrics))
        return None
    try:
        one = evaluate(decl.value, {"scratch": Fraction(1)})
        two = evaluate(decl.value, {"scratch": Fraction(2)})
    except EvalError as exc:
        c.add(exc.diagnostic)
        return None
    relative = one != two
    problem = _limit_problem(decl, one, two, relative, stated)
    if problem is not None:
        c.error(*problem[:2], decl.value.span, problem[2])
        return None
    return Limit(kind=decl.kind, metric=decl.metric, cmp=decl.cmp, value=float(one),
                 relative=relative, span=decl.span)


def _limit_problem(decl: ast.LimitDecl, one: Fraction, two: Fraction, relative: bool,
                   stated: bool) -> tuple[str, str, str | None] | None:
    """What is wrong with a limit's value (its value at scratch = 1 and at scratch = 2);
    `stated`: the plan names its reference run (`scratch 1M steps`)."""
    if relative and decl.metric == "steps" and not stated:
        return ("E307", "a step budget cannot be relative to the default scratch",
                "by default scratch trains as many steps as the plan: give a number of "
                "steps, or state the reference run (`scratch 1M steps`)")
    if decl.metric == "saving" and not 0 < one < 1:
        return ("E304", f"a saving is a fraction between 0 and 1, got {float(one):g}",
                "0.4 means 40% fewer FLOPs than scratch")
    if relative and (two != 2 * one or decl.kind == "expect"):
        return ("E307", "a relative budget must be a multiple of `scratch`",
                "e.g. `budget flops <= 0.6 * scratch`")
    if one <= 0:
        return ("E304", f"a {decl.kind} must be positive", None)
    return None


def lower_growth_cli(to: str, ops: str, src: Shape) -> tuple[Shape, Growth]:
    """`growdsl grow --to "depth=2*L hidden=2*D" --ops "fpi, stack"`: the target shape and
    the growth step, with symbols standing for the SOURCE model's dimensions. The target
    keeps the checkpoint's treatments unless `--to` lowers them (`width=`, `pool=`) or
    removes them (`width=none`, `rank=none`, `pool=none`: for `unshare`, `unfactor`,
    `unpool`).

    >>> shape, growth = lower_growth_cli("depth=2*L", "stack", PRESETS["gpt2"])
    >>> shape.layers, [op.name for op in growth.ops]
    (24, ['stack'])
    """
    to_source, ops_source = Source(path="--to", text=to), Source(path="--ops", text=ops)
    items = parse_fragment(to_source, "settings")
    decl = parse_fragment(ops_source, "ops")
    assert isinstance(items, tuple) and isinstance(decl, ast.GrowthDecl)
    to_c = Collector(to_source)
    removed = {STAGE_SHAPE_KEYS[i.key]: _UNTREATED[STAGE_SHAPE_KEYS[i.key]] for i in items
               if i.key in STAGE_SHAPE_KEYS and STAGE_SHAPE_KEYS[i.key] in _UNTREATED
               and isinstance(i.value, ast.Symbol) and i.value.name == "none"}
    kept = [i for i in items if STAGE_SHAPE_KEYS.get(i.key) not in removed]
    for item in kept:
        if item.key not in STAGE_SHAPE_KEYS or STAGE_SHAPE_KEYS[item.key] == "submodels":
            to_c.error("E204", f"`{item.key}` is not a target dimension or treatment",
                       item.key_span, one_of(k for k, f in STAGE_SHAPE_KEYS.items()
                                             if f != "submodels"))
    base = src.replace(**removed)
    shape = stage_shape(to_c, kept, base, target_env(src)) if not to_c.diagnostics else None
    to_c.raise_if_any()
    ops_c = Collector(ops_source)
    growth = lower_growth(ops_c, decl)
    ops_c.raise_if_any()
    assert shape is not None
    return shape, growth
