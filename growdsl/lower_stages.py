"""Lowering of the `stage` statements and the growth steps between them: each stage's
name, shape (the target's, with the stage's dimensions and treatments), training and
length in steps; each growth step's operators (`lower_ops`) and settings."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import partial
from typing import Any

from growdsl import ast
from growdsl.errors import did_you_mean, one_of
from growdsl.evaluate import MAX_DIM, whole
from growdsl.ir import Growth, Model, Stage, Train
from growdsl.keys import GROWTH_KEYS, POOL_MODES, STAGE_OTHER_KEYS, STAGE_SHAPE_KEYS, TRAIN_KEYS
from growdsl.lower_common import Collector, target_env, unquote
from growdsl.lower_ops import lower_ops
from growdsl.lower_train import lower_train
from growdsl.shapes import Shape, derive_shape

# A stage name names folders and reports.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def lower_stages(c: Collector, decls: list[ast.StageDecl], model: Model, train: Train,
                 has_init: bool) -> tuple[Stage, ...]:
    r"""Every stage that lowers (mistakes recorded on `c`), and the checks across stages:
    unique names, no growth after the last, a first stage of length 0 only with `init`.

    >>> from growdsl.parser import parse
    >>> from growdsl.shapes import PRESETS
    >>> from growdsl.source import Source
    >>> source = Source(path="m.grow", text="stage 5: name=\"a\" -> stack\nstage 5: name=\"a\"")
    >>> c = Collector(source)
    >>> decls = list(parse(source).statements)
    >>> stages = lower_stages(c, decls, Model(family="gpt2", shape=PRESETS["gpt2"]), Train(), False)
    >>> [d.code for d in c.diagnostics]
    ['E210']
    """
    out = []
    names: dict[str, Stage] = {}
    for index, decl in enumerate(decls):
        stage = _stage(c, index, decl, model, train)
        if stage is not None:
            if stage.name in names:
                c.error("E210", f"two stages are named `{stage.name}`", decl.span,
                        f"the other is at line {names[stage.name].span.line}")
            names[stage.name] = stage
            out.append(stage)
        if index == len(decls) - 1 and decl.growth is not None:
            c.error("E209", "a growth step after the last stage", decl.growth.span,
                    "the last stage trains the target; remove this `-> ...`")
    if out and out[0].steps == 0 and not has_init:
        c.error("E211", "the first stage has length 0 but nothing to start from",
                decls[0].length.span,
                'add `init from "DIR"` (a pretrained model of this shape) or train it')
    return tuple(out)


def _stage(c: Collector, index: int, decl: ast.StageDecl, model: Model,
           train: Train) -> Stage | None:
    env = target_env(model.shape)
    items = c.once(decl.items, lambda k: STAGE_SHAPE_KEYS.get(k, k))
    known = [*STAGE_SHAPE_KEYS, *TRAIN_KEYS, *STAGE_OTHER_KEYS]
    for item in items:
        if item.key not in known:
            c.error("E204", f"unknown stage key `{item.key}`", item.key_span,
                    did_you_mean(item.key, known) or "see docs/language.md for the keys")
    name = _name(c, items, index)
    stage_train = lower_train(c, [i for i in items if i.key in TRAIN_KEYS], train, stage=True)
    shape = stage_shape(c, [i for i in items if i.key in STAGE_SHAPE_KEYS], model.shape, env)
    length = c.attempt(partial(whole, decl.length, env, "a stage length", 0), None)
    growth = lower_growth(c, decl.growth) if decl.growth else None
    if length == 0 and decl.growth is None:
        c.error("E304", "a stage of length 0 needs a growth step", decl.length.span,
                "length 0 marks a starting shape (e.g. an `init` checkpoint) to grow from")
    if shape is None or length is None or name is None:
        return None
    per_step = stage_train.batch * shape.seq
    steps = math.ceil(length / per_step) if decl.unit == "tokens" else length
    return Stage(index=index, name=name, steps=steps, tokens=steps * per_step, shape=shape,
                 train=stage_train, growth=growth, span=decl.span)


def _name(c: Collector, items: list[ast.Item], index: int) -> str | None:
    item = next((i for i in items if i.key == "name"), None)
    if item is None:
        return f"stage{index + 1}"
    value = unquote(item.value.text) if isinstance(item.value, ast.String) else None
    if value is None or not _NAME.fullmatch(value):
        c.error("E305", "a stage name is a quoted word of letters, digits, `_`, `-`, `.`",
                item.value.span, 'e.g. name="short-seq" (it names folders and reports)')
        return None
    return value


def stage_shape(c: Collector, items: list[ast.Item], target: Shape,
                env: dict[str, Fraction]) -> Shape | None:
    """`target` with the shape keys of `items` applied (symbols valued by `env`).

    >>> from growdsl.parser import parse_fragment
    >>> from growdsl.shapes import PRESETS
    >>> from growdsl.source import Source
    >>> source = Source(path="-", text="depth=L/2 hidden=D/2 width=ffn/4")
    >>> bert = PRESETS["bert-base"]
    >>> shape = stage_shape(Collector(source), list(parse_fragment(source, "settings")), bert,
    ...                     target_env(bert))
    >>> shape.layers, shape.hidden, shape.heads, shape.ffn, shape.ffn_share
    (6, 384, 6, 3072, 4)
    """
    values: dict[str, Any] = {}
    ok = True
    for item in items:
        field = STAGE_SHAPE_KEYS[item.key]
        got: Any = (_pool(c, item) if field == "pool" else
                    c.attempt(partial(whole, item.value, env, f"`{item.key}`", 1, MAX_DIM), None))
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
            c.error("E401", f"FFN width {share_width} does not divide the FFN size "
                    f"{shape.ffn}", item.value.span,
                    "sharing tiles the stored FFN a whole number of times")
            return None
        shape = shape.replace(ffn_share=shape.ffn // share_width)
    return shape


def _pool(c: Collector, item: ast.Item) -> tuple[int, str] | None:
    node = item.value
    mode = "mean"
    if isinstance(node, ast.Call):
        if node.name not in POOL_MODES or len(node.args) != 1 or \
                not isinstance(node.args[0], ast.Positional):
            hint = None if node.name in POOL_MODES else did_you_mean(node.name, POOL_MODES)
            c.error("E306", f"`pool` takes a window or {' / '.join(POOL_MODES)}(window)",
                    node.span, hint or f"e.g. pool={POOL_MODES[-1]}(2)")
            return None
        mode, node = node.name, node.args[0].value
    size: int | None = c.attempt(partial(whole, node, {}, "a pooling window", 1, MAX_DIM), None)
    return (size, mode) if size is not None else None


def lower_growth(c: Collector, decl: ast.GrowthDecl) -> Growth:
    """A growth step: its operators and settings (mistakes recorded on `c`).

    >>> from growdsl.parser import parse_fragment
    >>> from growdsl.source import Source
    >>> source = Source(path="--ops", text="-> fpi, stack(remainder=top) seed=3 preserve")
    >>> growth = lower_growth(Collector(source), parse_fragment(source, "ops"))
    >>> [(op.name, op.args) for op in growth.ops], growth.seed, growth.preserve
    ([('fpi', {}), ('stack', {'remainder': 'top'})], 3, True)
    """
    seed = 0
    for item in c.once(decl.items, str):
        if item.key not in GROWTH_KEYS:
            c.error("E204", f"unknown growth-step key `{item.key}`", item.key_span,
                    one_of(GROWTH_KEYS))
        else:
            seed = c.attempt(partial(whole, item.value, {}, "a seed", 0), 0)
    ops = lower_ops(c, decl.ops)
    return Growth(ops=tuple(ops), seed=seed, preserve=decl.preserve, span=decl.span)
