"""Reading a Hugging Face `config.json` (a user's, a checkpoint's or a preset's) into a
`Shape` whose `settings` carry every other field, with what is wrong with it when it
cannot be (no torch). What each field means is the family's (`growdsl.families`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from growdsl import families
from growdsl.evaluate import MAX_DIM
from growdsl.families import PER_LAYER, REFUSED
from growdsl.shapes import PRESETS, Settings, Shape, derive_shape

# Written by transformers about a file, not about the model: not carried into settings.
METADATA = ("model_type", "architectures", "transformers_version", "_name_or_path", "growdsl",
            "_commit_hash")


class FieldError(ValueError):
    """A config field growdsl does not know, or cannot keep at its value."""


def shape_from_config(family: str, config: Any, preset: bool = False) -> Shape:
    """The shape a parsed config.json describes, the rest of it in `settings`; ValueError
    saying what is wrong. A preset (`preset=True`) names every dimension; a user's config
    takes the dimensions it lacks from the family's base preset."""
    problem = config_problem(family, config)
    if problem:
        fields = field_problem(family, config) if isinstance(config, dict) else None
        raise (FieldError if problem == fields else ValueError)(problem)
    fam = families.get(family)
    values = {f: config[k] for f, k in fam.hf_fields.items() if config.get(k) is not None}
    values.setdefault("tied", fam.tied_default)     # absent: the config class's default
    if "ffn" not in values and fam.ffn_null_multiple:
        hidden = values.get("hidden") or PRESETS[fam.default_preset].hidden
        values["ffn"] = fam.ffn_null_multiple * hidden
    settings = Settings({k: v for k, v in config.items()
                         if k not in fam.shape_keys() and k not in METADATA})
    if preset:
        heads, hidden = values["heads"], values["hidden"]
        shape = Shape(family=family, layers=values["layers"], hidden=hidden, heads=heads,
                      kv_heads=values.get("kv_heads", heads),
                      head_dim=values.get("head_dim", hidden // heads), ffn=values["ffn"],
                      vocab=values["vocab"], seq=values["positions"],
                      positions=values["positions"], tied=values["tied"])
    else:
        shape = derive_shape(PRESETS[fam.default_preset], values)
    return shape.replace(settings=settings)


def config_problem(family: str, config: object) -> str | None:
    """What is wrong with a config.json for `family`, or None."""
    if not isinstance(config, dict):
        return "not a JSON object"
    model_type = config.get("model_type")
    if model_type is not None and model_type != family:
        return f"model_type is `{model_type}`, not `{family}`"
    fam = families.get(family)
    fields = fam.hf_fields
    missing = [fields[k] for k in ("layers", "hidden", "heads", "vocab") if fields[k] not in config]
    if missing:
        return "lacks " + ", ".join(missing)
    for name, key in fields.items():
        value = config.get(key)
        if value is None:
            continue
        if name == "tied":
            if not isinstance(value, bool):
                return f"{key} is {value!r}, not true or false"
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIM:
            return f"{key} is {value!r}, not a positive whole number"
    return field_problem(family, config)


def field_problem(family: str, config: Mapping[str, Any]) -> str | None:
    """A field growdsl does not know for `family`, or one it cannot keep at its value."""
    fam = families.get(family)
    unknown = sorted(k for k in config if fam.field(k) is None)
    if unknown:
        shown = ", ".join(f"`{k}`" for k in unknown)
        return (f"{shown}: {'fields' if len(unknown) > 1 else 'a field'} growdsl does not know "
                f"for {family}, so it cannot tell whether growth keeps "
                f"{'them' if len(unknown) > 1 else 'it'}")
    for key, value in config.items():
        spec = fam.field(key)
        if spec is not None and spec.effect == REFUSED and not spec.allows(value):
            return f"{key} is {value!r}: {spec.doc}"
        if spec is not None and spec.effect == PER_LAYER and isinstance(value, list):
            layers = config.get(fam.hf_fields["layers"])
            if layers is not None and len(value) != layers:
                return f"{key} has {len(value)} entries for {layers} layers"
    return None


def operator_problems(shape: Shape, op: str, dims: tuple[str, ...]) -> list[str]:
    """Why operator `op` (changing the shape fields `dims`) cannot keep a config field of
    `shape` at its value; empty when it keeps them all."""
    fam = families.get(shape.family)
    out = []
    for key, value in shape.settings.items():
        spec = fam.field(key)
        if spec is None or spec.allows(value):
            continue
        if op in spec.refused_by:
            out.append(f"`{op}` cannot keep `{key}` = {value!r}: {spec.refused_by[op]}")
        elif spec.effect == PER_LAYER and "layers" in dims and isinstance(value, list) \
                and len(set(map(str, value))) > 1:
            out.append(f"`{op}` adds layers, but `{key}` differs between layers, so there is "
                       "no one value for the new ones")
    return out
