"""Lowering of the `model` statement: a preset, a family, or a family `from "DIR"` (whose
config.json the driver has read), then the statement's named dimensions on top."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from typing import Any

from growdsl import ast, families
from growdsl.errors import did_you_mean, one_of
from growdsl.evaluate import MAX_DIM, whole
from growdsl.hf_config import FieldError, shape_from_config
from growdsl.ir import Model
from growdsl.keys import MODEL_KEYS
from growdsl.lower_common import Collector, target_env, unquote
from growdsl.shapes import PRESETS, Shape, derive_shape


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfigFile:
    """A `model ... from "DIR"` directory's config.json, as the driver read it: its parsed
    JSON, or why it could not be read."""

    shown: str                  # DIR/config.json, as the messages name it
    data: Any = None
    error: str | None = None


# The config files of a spec, by the `from` path as written (unquoted).
Configs = Mapping[str, ConfigFile]


def lower_model(c: Collector, decl: ast.ModelDecl, configs: Configs) -> Model | None:
    """The target model, or None (mistakes recorded on `c`).

    >>> from growdsl.parser import parse
    >>> from growdsl.source import Source
    >>> source = Source(path="m.grow", text="model bert(layers=4, hidden=128, heads=2)")
    >>> (decl,) = parse(source).statements
    >>> model = lower_model(Collector(source), decl, {})
    >>> model.family, model.shape.layers, model.shape.head_dim
    ('bert', 4, 64)
    """
    base = _base(c, decl, configs)
    if base is None:
        return None
    shape, family, preset = base
    overrides = _overrides(c, decl, target_env(shape))
    if overrides is None:
        return None
    config = c.path(decl.config) if decl.config else None
    # `seq` sets the positions only of a preset's learned table: a config's limit stays.
    table = decl.config is None and families.get(family).positions == "learned"
    shape = derive_shape(shape, overrides, seq_sets_positions=table)
    return Model(family=family, shape=shape, span=decl.span,
                 config=config, preset=preset)


def _overrides(c: Collector, decl: ast.ModelDecl,
               env: dict[str, Fraction]) -> dict[str, Any] | None:
    """The statement's named dimensions, or None if one is wrong (recorded on `c`)."""
    overrides: dict[str, Any] = {}
    named = c.once([a for a in decl.args or () if isinstance(a, ast.Item)],
                   lambda k: MODEL_KEYS.get(k, k))
    for arg in [*named, *(a for a in decl.args or () if not isinstance(a, ast.Item))]:
        if not isinstance(arg, ast.Item):
            c.error("E208", "model arguments are named", arg.span,
                    "write `key=value`, e.g. `layers=12`")
            continue
        if arg.key not in MODEL_KEYS:
            c.error("E204", f"unknown model key `{arg.key}`", arg.key_span,
                    did_you_mean(arg.key, MODEL_KEYS) or one_of(MODEL_KEYS))
            continue
        field = MODEL_KEYS[arg.key]
        if field == "tied":
            overrides[field] = c.boolean(arg.value, "tied")
        else:
            overrides[field] = c.attempt(partial(whole, arg.value, env, arg.key, 1, MAX_DIM), None)
    if any(v is None for v in overrides.values()):
        return None
    return overrides


def _base(c: Collector, decl: ast.ModelDecl,
          configs: Configs) -> tuple[Shape, str, str | None] | None:
    """The shape and family the statement starts from, before its named dimensions, and the
    preset it names (None for a family or a config)."""
    name = decl.preset
    if decl.config is not None:
        if not families.has(name):
            c.error("E202", f"`model ... from` takes a family, not `{name}`",
                    decl.preset_span, one_of(families.names()))
            return None
        shape = _from_config(c, name, decl.config, configs)
        return (shape, name, None) if shape else None
    for plugins in (False, True):       # other packages' families only when needed
        presets = PRESETS.table(plugins=plugins)
        if name in presets:
            return presets[name], presets[name].family, name
        if name in families.names(plugins=plugins):
            return PRESETS[families.get(name).default_preset], name, None
    known = [*PRESETS, *families.names()]
    c.error("E202", f"unknown model preset `{name}`", decl.preset_span,
            did_you_mean(name, known) or one_of(known))
    return None


def _from_config(c: Collector, family: str, where: ast.String, configs: Configs) -> Shape | None:
    read = configs.get(unquote(where.text))
    assert read is not None, "config files are read by the driver (growdsl.driver.read_configs)"
    if read.error is not None:
        c.error("E703", f"cannot read {read.shown}: {read.error}", where.span,
                "give a local Hugging Face model directory with a config.json")
        return None
    try:
        return shape_from_config(family, read.data)
    except FieldError as exc:
        c.error("E703", f"{read.shown}: {exc}", where.span, "docs/operators.md lists the "
                "fields each family carries; docs/families.md how to add one")
        return None
    except ValueError as exc:
        names = families.names()
        c.error("E703", f"{read.shown}: {exc}", where.span, "growdsl reads the Hugging Face "
                f"config of a {', '.join(names[:-1])} or {names[-1]} model")
        return None
