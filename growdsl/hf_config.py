"""Reading a model's shape from a local Hugging Face `config.json` (no torch)."""

from __future__ import annotations

from typing import Any

from growdsl.evaluate import MAX_DIM
from growdsl.shapes import FAMILY_DEFAULT, HF_FIELDS, PRESETS, Shape, derive_shape


def shape_from_config(family: str, config: Any) -> Shape:
    """The shape a parsed config.json describes; ValueError saying what is wrong."""
    problem = config_problem(family, config)
    if problem:
        raise ValueError(problem)
    base = PRESETS[FAMILY_DEFAULT[family]]
    values = {f: config[k] for f, k in HF_FIELDS[family].items() if config.get(k) is not None}
    if family == "gpt2" and "ffn" not in values:     # GPT-2's n_inner: null means 4 x hidden
        values["ffn"] = 4 * values.get("hidden", base.hidden)
    return derive_shape(base, values)


def config_problem(family: str, config: object) -> str | None:
    """What is wrong with a config.json for `family`, or None."""
    if not isinstance(config, dict):
        return "not a JSON object"
    model_type = config.get("model_type")
    if model_type is not None and model_type != family:
        return f"model_type is `{model_type}`, not `{family}`"
    fields = HF_FIELDS[family]
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
    return None
