"""AST -> IR: names looked up, defaults filled, units converted, mistakes collected.

Every semantic mistake becomes a located diagnostic; all of a file's mistakes are reported
together. Divisibility and growth feasibility are the planner's checks (growdsl.checks);
this pass only makes the plan well-typed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from growdsl import ast, devices
from growdsl.errors import Diagnostic, GrowError, did_you_mean, one_of
from growdsl.evaluate import MAX_DIM, EvalError, evaluate, fail, real, whole
from growdsl.hf_config import shape_from_config
from growdsl.ir import Growth, Limit, Model, Plan, Stage, Train
from growdsl.keys import (
    BOOLEANS,
    GROWTH_KEYS,
    LIMIT_METRICS,
    MODEL_KEYS,
    POOL_MODES,
    STAGE_OTHER_KEYS,
    STAGE_SHAPE_KEYS,
    SYMBOLS,
    TRAIN_KEYS,
)
from growdsl.lower_ops import lower_ops
from growdsl.parser import parse, read_source
from growdsl.shapes import FAMILIES, FAMILY_DEFAULT, PRESETS, Shape, derive_shape
from growdsl.source import NO_SPAN, Source

T = TypeVar("T")


def load(path: str | Path) -> tuple[Source, Plan]:
    """Read, parse and lower a `.grow` file; raise GrowError listing every mistake."""
    source = read_source(path)
    return source, lower(parse(source), source)


def lower_text(text: str, path: str = "<string>") -> tuple[Source, Plan]:
    """Parse and lower `.grow` text (for tests and tools)."""
    source = Source(path=path, text=text)
    return source, lower(parse(source), source)


def lower(file: ast.File, source: Source) -> Plan:
    """The IR of a parsed file, or GrowError with every diagnostic found."""
    return _Lowering(source).file(file)


def target_env(shape: Shape) -> dict[str, Fraction]:
    """Symbol values for expressions: the target model's dimensions."""
    return {sym: Fraction(getattr(shape, field)) for sym, field in SYMBOLS.items()}


class _Lowering:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []

    # ---- plumbing ----
    def attempt(self, fn: Callable[[], T], default: T) -> T:
        """Run `fn`; an EvalError is recorded and `default` returned."""
        try:
            return fn()
        except EvalError as exc:
            self.diagnostics.append(exc.diagnostic)
            return default

    def error(self, code: str, message: str, span: Any, help: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code=code, message=message, span=span, help=help))

    def once(self, items: Iterable[ast.Item], field_of: Callable[[str], str]) -> list[ast.Item]:
        """`items` less those setting a field already set (each reported as E210)."""
        first: dict[str, ast.Item] = {}
        kept = []
        for item in items:
            field = field_of(item.key)
            if field in first:
                earlier = first[field]
                self.error("E210", f"`{item.key}` is set twice", item.key_span,
                           f"`{earlier.key}` was already set at line {earlier.span.line}")
                continue
            first[field] = item
            kept.append(item)
        return kept

    # ---- the file ----
    def file(self, file: ast.File) -> Plan:
        models = [s for s in file.statements if isinstance(s, ast.ModelDecl)]
        trains = [s for s in file.statements if isinstance(s, ast.TrainDecl)]
        inits = [s for s in file.statements if isinstance(s, ast.InitDecl)]
        stages = [s for s in file.statements if isinstance(s, ast.StageDecl)]
        for kind, found in (("model", models), ("train", trains), ("init", inits)):
            for extra in found[1:]:
                self.error("E205", f"a second `{kind}` statement", extra.span,
                           f"a plan has one `{kind}`; merge them")
        model = self.model(models[0]) if models else None
        if model is None and not models:
            self.error("E206", "no `model` statement", file.statements[0].span if file.statements
                       else NO_SPAN, "name the target, e.g. `model bert-base`")
        if not stages:
            self.error("E207", "no `stage` statement", NO_SPAN,
                       "a plan trains at least one stage, e.g. `stage 100k:`")
        train = self.train_items(trains[0].items, Train()) if trains else Train()
        before = len(self.diagnostics)
        out_stages = self.stages(stages, model or _STAND_IN, train, bool(inits))
        if model is None:    # of the stages' mistakes, keep those that name no dimension
            mistakes = self.diagnostics[before:]
            self.diagnostics[before:] = [d for d in mistakes if d.code in _TARGET_FREE]
        limits = tuple(x for lim in file.statements if isinstance(lim, ast.LimitDecl)
                       if (x := self.limit(lim)) is not None)
        _raise_if_any(self)
        assert model is not None
        init = inits[0] if inits else None
        return Plan(source=self.source.path, model=model, train=train, stages=out_stages,
                    init=_unquote(init.path.text) if init else None,
                    init_span=init.span if init else NO_SPAN, limits=limits)

    # ---- model ----
    def model(self, decl: ast.ModelDecl) -> Model | None:
        base = self.model_base(decl)
        if base is None:
            return None
        shape, family = base
        overrides: dict[str, Any] = {}
        env = target_env(shape)
        named = self.once([a for a in decl.args or () if isinstance(a, ast.Item)],
                          lambda k: MODEL_KEYS.get(k, k))
        for arg in [*named, *(a for a in decl.args or () if not isinstance(a, ast.Item))]:
            if not isinstance(arg, ast.Item):
                self.error("E208", "model arguments are named", arg.span,
                           "write `key=value`, e.g. `layers=12`")
                continue
            if arg.key not in MODEL_KEYS:
                self.error("E204", f"unknown model key `{arg.key}`", arg.key_span,
                           did_you_mean(arg.key, MODEL_KEYS) or one_of(MODEL_KEYS))
                continue
            field = MODEL_KEYS[arg.key]
            if field == "tied":
                overrides[field] = self.boolean(arg.value, "tied")
            else:
                overrides[field] = self.attempt(partial(whole, arg.value, env, arg.key, 1, MAX_DIM),
                                                None)
        if any(v is None for v in overrides.values()):
            return None
        shape = derive_shape(shape, overrides)
        config = _unquote(decl.config.text) if decl.config else None
        return Model(family=family, shape=shape, span=decl.span, config=config,
                     preset=decl.preset if decl.preset in PRESETS else None)

    def model_base(self, decl: ast.ModelDecl) -> tuple[Shape, str] | None:
        name = decl.preset
        if decl.config is not None:
            if name not in FAMILIES:
                self.error("E202", f"`model ... from` takes a family, not `{name}`",
                           decl.preset_span, one_of(FAMILIES))
                return None
            shape = self.read_config(name, decl.config)
            return (shape, name) if shape else None
        if name in PRESETS:
            return PRESETS[name], PRESETS[name].family
        if name in FAMILIES:
            return PRESETS[FAMILY_DEFAULT[name]], name
        self.error("E202", f"unknown model preset `{name}`", decl.preset_span,
                   did_you_mean(name, [*PRESETS, *FAMILIES]) or one_of([*PRESETS, *FAMILIES]))
        return None

    def read_config(self, family: str, where: ast.String) -> Shape | None:
        shown = Path(_unquote(where.text)) / "config.json"
        try:
            config = json.loads((self.source.directory / shown).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.error("E703", f"cannot read {shown}: {getattr(exc, 'strerror', None) or exc}",
                       where.span, "give a local Hugging Face model directory with a config.json")
            return None
        try:
            return shape_from_config(family, config)
        except ValueError as exc:
            self.error("E703", f"{shown}: {exc}", where.span,
                       "growdsl reads the Hugging Face config of a bert, gpt2 or llama model")
            return None

    # ---- training ----
    def train_items(self, items: Iterable[ast.Item], base: Train, stage: bool = False) -> Train:
        changes: dict[str, Any] = {}
        for item in items if stage else self.once(items, str):
            if stage and item.key in TRAIN_KEYS and TRAIN_KEYS[item.key].plan_wide:
                self.error("E212", f"`{item.key}` applies to the whole plan", item.key_span,
                           "set it in `train { }`, not in a stage")
                continue
            if item.key not in TRAIN_KEYS:
                self.error("E204", f"unknown training key `{item.key}`", item.key_span,
                           did_you_mean(item.key, TRAIN_KEYS) or one_of(TRAIN_KEYS))
                continue
            value = self.train_value(item)
            if value is not None:
                changes[item.key] = value
        return dataclasses.replace(base, **changes)

    def train_value(self, item: ast.Item) -> Any:
        spec = TRAIN_KEYS[item.key]
        node, env = item.value, dict[str, Fraction]()
        if spec.choices:
            return self.word(node, item.key, spec.choices)
        if spec.type == "path":
            if isinstance(node, ast.String):
                return _unquote(node.text)
            self.error("E305", f"`{item.key}` takes a path in quotes", node.span,
                       f'e.g. {item.key} = "data/corpus.txt"')
            return None
        if spec.type == "text":
            if isinstance(node, ast.String):
                text = _unquote(node.text)
                problem = devices.problem(text) if item.key == "device" else None
                if problem is not None:
                    self.error("E803", problem[0], node.span, problem[1])
                    return None
                return text
            self.error("E305", f"`{item.key}` takes a name in quotes", node.span,
                       f'e.g. {item.key} = "h100-80gb"')
            return None
        if spec.type == "bool":
            return self.boolean(node, item.key)
        if spec.type == "betas":
            return self.betas(node)
        if spec.type == "int":
            top = int(spec.maximum) if spec.maximum is not None else 10**18
            return self.attempt(partial(whole, node, env, item.key, int(spec.minimum or 0), top),
                                None)
        return self.attempt(partial(real, node, env, item.key, spec.minimum, spec.maximum), None)

    def betas(self, node: ast.Value) -> tuple[float, float] | None:
        if not (isinstance(node, ast.Tuple) and len(node.items) == 2):
            self.error("E305", "`betas` takes two numbers", node.span, "e.g. betas = (0.9, 0.999)")
            return None
        b1, b2 = (self.attempt(partial(real, n, {}, "a beta", 0.0), None) for n in node.items)
        if b1 is None or b2 is None:
            return None
        if max(b1, b2) >= 1:
            self.error("E304", "Adam's betas must be below 1", node.span, "e.g. (0.9, 0.999)")
            return None
        return (b1, b2)

    def word(self, node: ast.Value, key: str, choices: tuple[str, ...]) -> str | None:
        if isinstance(node, ast.Symbol) and node.name in choices:
            return node.name
        shown = node.name if isinstance(node, ast.Symbol) else None
        self.error("E306", f"`{key}` must be one of {', '.join(choices)}"
                   + (f"; got `{shown}`" if shown else ""), node.span,
                   did_you_mean(shown, choices) if shown else None)
        return None

    def boolean(self, node: ast.Value, key: str) -> bool | None:
        word = self.word(node, key, tuple(BOOLEANS))
        return BOOLEANS[word] if word else None

    # ---- stages ----
    def stages(self, decls: list[ast.StageDecl], model: Model, train: Train,
               has_init: bool) -> tuple[Stage, ...]:
        out = []
        names: dict[str, Stage] = {}
        for index, decl in enumerate(decls):
            stage = self.stage(index, decl, model, train)
            if stage is not None:
                if stage.name in names:
                    self.error("E210", f"two stages are named `{stage.name}`", decl.span,
                               f"the other is at line {names[stage.name].span.line}")
                names[stage.name] = stage
                out.append(stage)
            if index == len(decls) - 1 and decl.growth is not None:
                self.error("E209", "a growth step after the last stage", decl.growth.span,
                           "the last stage trains the target; remove this `-> ...`")
        if out and out[0].steps == 0 and not has_init:
            self.error("E211", "the first stage has length 0 but nothing to start from",
                       decls[0].length.span,
                       'add `init from "DIR"` (a pretrained model of this shape) or train it')
        return tuple(out)

    def stage(self, index: int, decl: ast.StageDecl, model: Model, train: Train) -> Stage | None:
        env = target_env(model.shape)
        items = self.once(decl.items, lambda k: STAGE_SHAPE_KEYS.get(k, k))
        known = [*STAGE_SHAPE_KEYS, *TRAIN_KEYS, *STAGE_OTHER_KEYS]
        for item in items:
            if item.key not in known:
                self.error("E204", f"unknown stage key `{item.key}`", item.key_span,
                           did_you_mean(item.key, known) or "see docs/language.md for the keys")
        name = self.stage_name(items, index)
        stage_train = self.train_items([i for i in items if i.key in TRAIN_KEYS], train, stage=True)
        shape = self.stage_shape([i for i in items if i.key in STAGE_SHAPE_KEYS], model.shape, env)
        length = self.attempt(partial(whole, decl.length, env, "a stage length", 0), None)
        growth = self.growth(decl.growth) if decl.growth else None
        if length == 0 and decl.growth is None:
            self.error("E304", "a stage of length 0 needs a growth step", decl.length.span,
                       "length 0 marks a starting shape (e.g. an `init` checkpoint) to grow from")
        if shape is None or length is None or name is None:
            return None
        per_step = stage_train.batch * shape.seq
        steps = math.ceil(length / per_step) if decl.unit == "tokens" else length
        return Stage(index=index, name=name, steps=steps, tokens=steps * per_step, shape=shape,
                     train=stage_train, growth=growth, span=decl.span)

    def stage_name(self, items: list[ast.Item], index: int) -> str | None:
        item = next((i for i in items if i.key == "name"), None)
        if item is None:
            return f"stage{index + 1}"
        value = _unquote(item.value.text) if isinstance(item.value, ast.String) else None
        if value is None or not _NAME.fullmatch(value):
            self.error("E305", "a stage name is a quoted word of letters, digits, `_`, `-`, `.`",
                       item.value.span, 'e.g. name="short-seq" (it names folders and reports)')
            return None
        return value

    def stage_shape(self, items: list[ast.Item], target: Shape, env: dict[str, Fraction]
                    ) -> Shape | None:
        values: dict[str, Any] = {}
        ok = True
        for item in items:
            field = STAGE_SHAPE_KEYS[item.key]
            got: Any = (self.pool(item) if field == "pool" else
                        self.attempt(partial(whole, item.value, env, f"`{item.key}`", 1, MAX_DIM),
                                     None))
            if got is None:
                ok = False
            elif field == "pool":
                values["pool"], values["pool_mode"] = got
            else:
                values[field] = got
        if not ok:
            return None
        share_width = values.pop("ffn_share", None)
        shape = derive_shape(target, values, stage=True)
        if share_width is not None:
            item = next(i for i in items if i.key == "width")
            if shape.ffn % share_width:
                self.error("E401", f"FFN width {share_width} does not divide the FFN size "
                           f"{shape.ffn}", item.value.span,
                           "sharing tiles the stored FFN a whole number of times")
                return None
            shape = shape.replace(ffn_share=shape.ffn // share_width)
        return shape

    def pool(self, item: ast.Item) -> tuple[int, str] | None:
        node = item.value
        mode = "mean"
        if isinstance(node, ast.Call):
            if node.name not in POOL_MODES or len(node.args) != 1 or \
                    not isinstance(node.args[0], ast.Positional):
                hint = None if node.name in POOL_MODES else did_you_mean(node.name, POOL_MODES)
                self.error("E306", f"`pool` takes a window or {' / '.join(POOL_MODES)}(window)",
                           node.span, hint or f"e.g. pool={POOL_MODES[-1]}(2)")
                return None
            mode, node = node.name, node.args[0].value
        size: int | None = self.attempt(partial(whole, node, {}, "a pooling window", 1, MAX_DIM),
                                        None)
        return (size, mode) if size is not None else None

    # ---- growth ----
    def growth(self, decl: ast.GrowthDecl) -> Growth | None:
        seed = 0
        for item in self.once(decl.items, str):
            if item.key not in GROWTH_KEYS:
                self.error("E204", f"unknown growth-step key `{item.key}`", item.key_span,
                           one_of(GROWTH_KEYS))
            else:
                seed = self.attempt(partial(whole, item.value, {}, "a seed", 0), 0)
        ops = lower_ops(decl.ops, self.diagnostics)
        return Growth(ops=tuple(ops), seed=seed, preserve=decl.preserve, span=decl.span)

    # ---- limits ----
    def limit(self, decl: ast.LimitDecl) -> Limit | None:
        metrics = LIMIT_METRICS[decl.kind]
        if decl.metric not in metrics:
            self.error("E204", f"unknown {decl.kind} metric `{decl.metric}`", decl.metric_span,
                       did_you_mean(decl.metric, metrics) or one_of(metrics))
            return None
        try:
            one = evaluate(decl.value, {"scratch": Fraction(1)})
            two = evaluate(decl.value, {"scratch": Fraction(2)})
        except EvalError as exc:
            self.diagnostics.append(exc.diagnostic)
            return None
        relative = one != two
        if relative and decl.metric == "steps":
            self.error("E307", "a step budget cannot be relative to scratch", decl.value.span,
                       "scratch trains as many steps as the plan; give a number of steps")
            return None
        if decl.metric == "saving" and not 0 < one < 1:
            self.error("E304", f"a saving is a fraction between 0 and 1, got {float(one):g}",
                       decl.value.span, "0.4 means 40% fewer FLOPs than scratch")
            return None
        if relative and (two != 2 * one or decl.kind == "expect"):
            self.diagnostics.append(fail(
                "E307", "a relative budget must be a multiple of `scratch`", decl.value.span,
                "e.g. `budget flops <= 0.6 * scratch`").diagnostic)
            return None
        if one <= 0:
            self.error("E304", f"a {decl.kind} must be positive", decl.value.span)
            return None
        return Limit(kind=decl.kind, metric=decl.metric, cmp=decl.cmp, value=float(one),
                     relative=relative, span=decl.span)


def _unquote(text: str) -> str:
    """A string token's value: `\\"` and `\\\\` are escapes, other backslashes are kept."""
    body = text[1:-1] if text.startswith('"') else text
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


def _position(d: Diagnostic) -> tuple[int, int]:
    return (d.span.line, d.span.col)


def lower_growth_cli(to: str, ops: str, src: Shape) -> tuple[Shape, Growth]:
    """`growdsl grow --to "depth=2*L hidden=2*D" --ops "fpi, stack"`: the target shape and
    the growth step, with symbols standing for the SOURCE model's dimensions."""
    from growdsl.parser import parse_fragment

    to_source, ops_source = Source(path="--to", text=to), Source(path="--ops", text=ops)
    items = parse_fragment(to_source, "settings")
    decl = parse_fragment(ops_source, "ops")
    assert isinstance(items, tuple) and isinstance(decl, ast.GrowthDecl)
    lowering = _Lowering(to_source)
    for item in items:
        if item.key not in STAGE_SHAPE_KEYS or STAGE_SHAPE_KEYS[item.key] in _TREATMENTS:
            lowering.error("E204", f"`{item.key}` is not a target dimension", item.key_span,
                           one_of(k for k, f in STAGE_SHAPE_KEYS.items() if f not in _TREATMENTS))
    shape = lowering.stage_shape(list(items), src, target_env(src)) if not lowering.diagnostics \
        else None
    _raise_if_any(lowering)
    grow_lowering = _Lowering(ops_source)
    growth = grow_lowering.growth(decl)
    _raise_if_any(grow_lowering)
    assert shape is not None and growth is not None
    return shape, growth


_TREATMENTS = ("ffn_share", "ffn_rank", "pool", "submodels")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Stages are still lowered when the model is wrong, against this stand-in, so that their
# own naming mistakes are reported too.
_STAND_IN = Model(family="bert", shape=PRESETS["bert-base"])
_TARGET_FREE = ("E203", "E204", "E208", "E209", "E210", "E212", "E305", "E306")


def _raise_if_any(lowering: _Lowering) -> None:
    if lowering.diagnostics:
        raise GrowError([dataclasses.replace(d, source=lowering.source)
                         for d in sorted(lowering.diagnostics, key=_position)])
