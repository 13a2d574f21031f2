"""Lowering of training settings: the `train { }` block, and a stage's own overrides of it
(which may not set the plan-wide keys)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from fractions import Fraction
from functools import partial
from typing import Any

from growdsl import ast, devices
from growdsl.errors import did_you_mean, one_of
from growdsl.evaluate import real, whole
from growdsl.ir import Train
from growdsl.keys import TRACKERS, TRAIN_KEYS
from growdsl.lower_common import Collector, unquote


def lower_train(c: Collector, items: Iterable[ast.Item], base: Train,
                stage: bool = False) -> Train:
    """`base` with `items` applied; a stage's items (`stage=True`) may repeat nothing of
    `base` but may not set plan-wide keys. Mistakes are recorded on `c`.

    >>> from growdsl.parser import parse_fragment
    >>> from growdsl.source import Source
    >>> source = Source(path="-", text='lr = 3e-4 decay = cosine data = "c.txt"')
    >>> c = Collector(source)
    >>> train = lower_train(c, parse_fragment(source, "settings"), Train())
    >>> train.lr, train.decay, str(train.data), train.data.path.name, c.diagnostics
    (0.0003, 'cosine', 'c.txt', 'c.txt', [])
    """
    changes: dict[str, Any] = {}
    for item in items if stage else c.once(items, str):
        if stage and item.key in TRAIN_KEYS and TRAIN_KEYS[item.key].plan_wide:
            c.error("E212", f"`{item.key}` applies to the whole plan", item.key_span,
                    "set it in `train { }`, not in a stage")
            continue
        if item.key not in TRAIN_KEYS:
            c.error("E204", f"unknown training key `{item.key}`", item.key_span,
                    did_you_mean(item.key, TRAIN_KEYS) or one_of(TRAIN_KEYS))
            continue
        value = _value(c, item)
        if value is not None:
            changes[item.key] = value
    return dataclasses.replace(base, **changes)


def _value(c: Collector, item: ast.Item) -> Any:
    spec = TRAIN_KEYS[item.key]
    node, env = item.value, dict[str, Fraction]()
    if spec.choices:
        return c.word(node, item.key, spec.choices)
    if spec.type == "path":
        if isinstance(node, ast.String):
            return c.path(node)
        c.error("E305", f"`{item.key}` takes a path in quotes", node.span,
                f'e.g. {item.key} = "data/corpus.txt"')
        return None
    if spec.type == "text":
        return _text(c, item)
    if spec.type == "trackers":
        return _trackers(c, item.value)
    if spec.type == "bool":
        return c.boolean(node, item.key)
    if spec.type == "betas":
        return _betas(c, node)
    if spec.type == "int":
        top = int(spec.maximum) if spec.maximum is not None else 10**18
        return c.attempt(partial(whole, node, env, item.key, int(spec.minimum or 0), top), None)
    return c.attempt(partial(real, node, env, item.key, spec.minimum, spec.maximum), None)


def _text(c: Collector, item: ast.Item) -> str | None:
    """A quoted name; `device` must be one growdsl.devices knows (E803)."""
    if not isinstance(item.value, ast.String):
        c.error("E305", f"`{item.key}` takes a name in quotes", item.value.span,
                f'e.g. {item.key} = "h100-80gb"')
        return None
    text = unquote(item.value.text)
    problem = devices.problem(text) if item.key == "device" else None
    if problem is not None:
        c.error("E803", problem[0], item.value.span, problem[1])
        return None
    return text


def _trackers(c: Collector, node: ast.Value) -> tuple[str, ...] | None:
    """`report_to`: a tracker's name, a tuple of them, or `none`; an unknown one is E722.

    >>> from growdsl.source import Source
    >>> c = Collector(Source(path="-", text=""))
    >>> _trackers(c, ast.Tuple(items=(ast.Symbol(name="wandb"), ast.Symbol(name="mlflow"))))
    ('wandb', 'mlflow')
    >>> _trackers(c, ast.Symbol(name="none")), c.diagnostics
    ((), [])
    >>> _trackers(c, ast.Symbol(name="tensorbord")), [d.help for d in c.diagnostics]
    (None, ['did you mean `tensorboard`?'])
    """
    if isinstance(node, ast.Symbol) and node.name == "none":
        return ()
    words = node.items if isinstance(node, ast.Tuple) else (node,)
    names: list[str] = []
    for word in words:
        if not isinstance(word, ast.Symbol):
            c.error("E305", "`report_to` takes tracker names", word.span,
                    "e.g. report_to = wandb, report_to = (tensorboard, wandb), or none")
        elif word.name not in TRACKERS:
            c.error("E722", f"unknown tracker `{word.name}`", word.span,
                    did_you_mean(word.name, TRACKERS) or one_of(TRACKERS))
        elif word.name in names:
            c.error("E210", f"tracker `{word.name}` named twice", word.span, None)
        else:
            names.append(word.name)
    return tuple(names) if len(names) == len(words) else None


def _betas(c: Collector, node: ast.Value) -> tuple[float, float] | None:
    if not (isinstance(node, ast.Tuple) and len(node.items) == 2):
        c.error("E305", "`betas` takes two numbers", node.span, "e.g. betas = (0.9, 0.999)")
        return None
    b1, b2 = (c.attempt(partial(real, n, {}, "a beta", 0.0), None) for n in node.items)
    if b1 is None or b2 is None:
        return None
    if max(b1, b2) >= 1:
        c.error("E304", "Adam's betas must be below 1", node.span, "e.g. (0.9, 0.999)")
        return None
    return (b1, b2)
