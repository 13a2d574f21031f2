"""A plan's `sweep { }` block: what `growdsl sweep` varies, and the candidate plans it builds
(through the AST and the printer, never by editing text). No torch.

    sweep {
      timing = (0.05, 0.1, 0.25)   # share of the proxy's steps in the small model
      factor = (2, 4)              # the target's depth / the small model's
      schedule = (restart, continue)
      steps = 300                  # each proxy run
      flops = 5e13                 # the whole sweep's FLOP budget, scratch included
    }

A candidate is a two-stage plan: the small model (the target with depth L/factor and
whatever else the plan's first stage sets) for `timing x steps` steps, stacked (`stack`)
into the target, which trains the remaining steps; `schedule` and the second stage's
`warmup` come from the candidate. Scratch is the target alone for `steps` steps (equal
data). Values: docs/sweep.md; keys: `growdsl.keys.SWEEP_KEYS`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from growdsl import ast
from growdsl.errors import Diagnostic, did_you_mean, one_of
from growdsl.evaluate import EvalError, real, whole
from growdsl.keys import SWEEP_KEYS
from growdsl.source import NO_SPAN, Span

OPEN = tuple(k for k, spec in SWEEP_KEYS.items() if spec.open)


@dataclass(frozen=True, kw_only=True, slots=True)
class Space:
    """The sweep's choices (each a tuple: one value means fixed) and its bounds."""

    timing: tuple[float, ...] = (0.1,)
    factor: tuple[int, ...] = (4,)
    schedule: tuple[str, ...] = ("restart",)
    warmup: tuple[int, ...] = ()          # empty: the plan's own warmup
    steps: int | None = None              # None: the plan's total steps
    flops: float | None = None             # the sweep's FLOP budget
    jobs: int | None = None
    search: str = "grid"
    trials: int | None = None
    span: Span = field(default=NO_SPAN, compare=False)

    def grid(self) -> list[Choice]:
        """Every combination of the open choices, in a fixed order."""
        warm: tuple[int | None, ...] = self.warmup or (None,)
        return [Choice(timing=t, factor=f, schedule=s, warmup=w)
                for f, t, s, w in itertools.product(self.factor, self.timing, self.schedule,
                                                    warm)]


@dataclass(frozen=True, kw_only=True, slots=True)
class Choice:
    """One candidate's values."""

    timing: float
    factor: int
    schedule: str
    warmup: int | None = None

    @property
    def name(self) -> str:
        warm = f"-w{self.warmup}" if self.warmup is not None else ""
        return f"g{self.factor}-t{self.timing:g}-{self.schedule}{warm}"


def _value(item: ast.Item, node: ast.Value, layers: int) -> object:
    """One value of `item`, checked against its key (EvalError when wrong)."""
    spec = SWEEP_KEYS[item.key]
    if spec.choices:
        if isinstance(node, ast.Symbol) and node.name in spec.choices:
            return node.name
        shown = node.name if isinstance(node, ast.Symbol) else None
        raise EvalError(Diagnostic(
            code="E320", span=node.span,
            message=f"`{item.key}` takes {', '.join(spec.choices)}"
                    + (f"; got `{shown}`" if shown else ""),
            help=(did_you_mean(shown, spec.choices) if shown else None)
            or one_of(spec.choices)))
    if spec.type == "int":
        n = whole(node, {}, f"`{item.key}`", int(spec.minimum or 0), 10**18)
        if item.key == "factor" and layers % n:
            raise EvalError(Diagnostic(
                code="E321", span=node.span,
                message=f"growth factor {n} does not divide the target's {layers} layers",
                help="pick factors that divide the depth, e.g. "
                     + ", ".join(str(k) for k in range(2, layers + 1) if layers % k == 0)))
        return n
    x = real(node, {}, f"`{item.key}`", spec.minimum, spec.maximum)
    if item.key == "timing" and not 0 < x < 1:
        raise EvalError(Diagnostic(code="E320", span=node.span,
                                   message=f"`timing` is a share of the steps, strictly between "
                                           f"0 and 1; got {x:g}",
                                   help="e.g. timing = (0.05, 0.1, 0.25)"))
    return x


def read(decl: ast.SweepDecl, layers: int) -> tuple[Space, list[Diagnostic]]:
    """The block's Space and every mistake in it (unknown keys, bad values, a tuple for a
    key that cannot be open, a key set twice)."""
    found: list[Diagnostic] = []
    values: dict[str, object] = {}
    seen: dict[str, ast.Item] = {}
    for item in decl.items:
        spec = SWEEP_KEYS.get(item.key)
        if spec is None:
            found.append(Diagnostic(code="E220", span=item.key_span,
                                    message=f"unknown sweep key `{item.key}`",
                                    help=did_you_mean(item.key, SWEEP_KEYS) or one_of(SWEEP_KEYS)))
            continue
        if item.key in seen:
            found.append(Diagnostic(code="E210", span=item.key_span,
                                    message=f"`{item.key}` is set twice",
                                    help=f"it was already set at line {seen[item.key].span.line}"))
            continue
        seen[item.key] = item
        nodes = item.value.items if isinstance(item.value, ast.Tuple) else (item.value,)
        if isinstance(item.value, ast.Tuple) and not spec.open:
            found.append(Diagnostic(code="E320", span=item.value.span,
                                    message=f"`{item.key}` takes one value, not a choice",
                                    help="only " + ", ".join(f"`{k}`" for k in OPEN)
                                    + " can be left open with a tuple"))
            continue
        got = []
        for node in nodes:
            try:
                got.append(_value(item, node, layers))
            except EvalError as exc:
                found.append(exc.diagnostic)
        if len(got) == len(nodes):
            values[item.key] = tuple(dict.fromkeys(got)) if spec.open else got[0]
    return Space(span=decl.span, **values), found  # type: ignore[arg-type]


def candidate_file(base: ast.File, choice: Choice, steps: int) -> ast.File:
    """The candidate plan: the base plan's model and training, two stages as `choice` says,
    no limits and no sweep block (a proxy is not the plan the limits are about)."""
    small_steps = max(1, round(choice.timing * steps))
    first = next(s for s in base.statements if isinstance(s, ast.StageDecl))
    keep = tuple(i for i in first.items if i.key not in ("depth", "layers", "name"))
    depth = ast.Item(key="depth", value=ast.BinOp(op="/", left=ast.Symbol(name="L"),
                                                  right=ast.Number(text=str(choice.factor))))
    small = ast.StageDecl(length=ast.Number(text=str(small_steps)), items=(depth, *keep),
                          growth=ast.GrowthDecl(ops=(ast.OpDecl(name="stack"),)))
    later = () if choice.warmup is None else (
        ast.Item(key="warmup", value=ast.Number(text=str(choice.warmup))),)
    big = ast.StageDecl(length=ast.Number(text=str(steps - small_steps)), items=later)
    return _with_stages(base, (small, big), {"schedule": choice.schedule})


def scratch_file(base: ast.File, steps: int) -> ast.File:
    """The sweep's reference run, as growdsl.reference defines `scratch` for the base plan
    at the proxies' length: the target alone for `steps` steps, from scratch (no `init`), at
    the last stage's training settings with the schedule restarted."""
    stages = [s for s in base.statements if isinstance(s, ast.StageDecl)]
    first_only = ("seed", "data", "tokenizer")      # the reference run takes the first stage's
    items = (*(i for i in stages[-1].items if i.key not in ("name", *first_only)),
             *(i for i in stages[0].items if i.key in first_only))
    stage = ast.StageDecl(length=ast.Number(text=str(steps)), items=tuple(items))
    fresh = ast.File(statements=tuple(s for s in base.statements
                                      if not isinstance(s, ast.InitDecl)))
    return _with_stages(fresh, (stage,), {"schedule": "restart"})


def _with_stages(base: ast.File, stages: tuple[ast.StageDecl, ...],
                 train: dict[str, str]) -> ast.File:
    out: list[ast.Statement] = []
    for stmt in base.statements:
        if isinstance(stmt, ast.TrainDecl):
            items = [i for i in stmt.items if i.key not in train]
            items += [ast.Item(key=k, value=ast.Symbol(name=v)) for k, v in train.items()]
            out.append(ast.TrainDecl(items=tuple(items)))
        elif isinstance(stmt, ast.ModelDecl | ast.InitDecl):
            out.append(stmt)
    if train and not any(isinstance(s, ast.TrainDecl) for s in out):
        out.append(ast.TrainDecl(items=tuple(ast.Item(key=k, value=ast.Symbol(name=v))
                                             for k, v in train.items())))
    return ast.File(statements=(*out, *stages))


def full_file(base: ast.File, choice: Choice, steps: int) -> ast.File:
    """The chosen schedule at the plan's own size (`steps`: its total), its limits, reference
    run (`scratch`) and sweep block kept so that it can be checked and swept again."""
    cand = candidate_file(base, choice, steps)
    extra = tuple(s for s in base.statements
                  if isinstance(s, ast.LimitDecl | ast.ScratchDecl | ast.SweepDecl))
    return ast.File(statements=(*cand.statements, *extra))
