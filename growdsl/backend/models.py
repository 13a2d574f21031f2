"""Hugging Face models from a `Shape` and back: `config_for`, `build_model`, `shape_of`,
plus saving and loading models that carry low-cost treatments.

A shape's treatments live in `config.growdsl` (saved in config.json): the logical FFN size
and its sharing factor (the stored FFN has `ffn // ffn_share` units), the factorization
rank, the pooling window and mode, the training length, and a masked-growth gate if any.
Plain models (no treatment) load with `from_pretrained` like any HF checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers as hf
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from growdsl.backend.families import family
from growdsl.backend.families.layout import Layout
from growdsl.backend.pooling import PooledBertForMaskedLM
from growdsl.backend.treatments import factorize_ffn, install_mask
from growdsl.families import PER_LAYER
from growdsl.hf_config import shape_from_config
from growdsl.shapes import Shape

_EXTRA = ("ffn", "ffn_share", "ffn_rank", "pool", "pool_mode", "seq", "submodels")


def _specials(shape: Shape) -> dict[str, Any]:
    """Token ids for a shape with no config of its own (a tiny test vocabulary), where the
    family's defaults would fall outside it."""
    return {"bos_token_id": 0, "eos_token_id": min(1, shape.vocab - 1), "pad_token_id": None}


def config_for(shape: Shape, **overrides: Any) -> PretrainedConfig:
    """The HF config of `shape`: its `settings` (the user's config, carried) with its shape
    fields (FFN stored size, tied head) and treatments in `growdsl`."""
    fam = family(shape.family)
    if not fam.free_head_dim and shape.heads * shape.head_dim != shape.hidden:
        raise ValueError(f"{shape.family}: heads x head_dim must equal hidden")
    dims = {"layers": shape.layers, "hidden": shape.hidden, "heads": shape.heads,
            "kv_heads": shape.kv_heads, "head_dim": shape.head_dim, "ffn": shape.ffn_stored,
            "vocab": shape.vocab, "positions": shape.positions, "tied": shape.tied}
    values: dict[str, Any] = dict(shape.settings)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key not in values:
            values[key] = _specials(shape)[key]
    for name, spec in values.items():
        field = fam.field(name)
        if field is not None and field.effect == PER_LAYER and isinstance(spec, list):
            values[name] = per_layer(name, spec, shape.layers)
    values.update({key: dims[name] for name, key in fam.hf_fields.items()})
    config: PretrainedConfig = getattr(hf, fam.config_class)(**values)
    config.growdsl = {name: getattr(shape, name) for name in _EXTRA}
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def derive_config(base: PretrainedConfig, shape: Shape) -> PretrainedConfig:
    """The config of `shape` grown from a checkpoint whose config is `base`: `shape`'s
    settings are `base`'s (read by `shape_of`), and `base`'s `architectures` is kept."""
    config = config_for(shape)
    config.architectures = getattr(base, "architectures", None)
    return config


def per_layer(name: str, values: list[Any], layers: int) -> list[Any]:
    """A per-layer config list for `layers` layers: a uniform one repeated (the planner
    refuses depth growth of a mixed one)."""
    if len(values) == layers:
        return values
    if len(set(map(str, values))) > 1:
        raise ValueError(f"`{name}` differs between layers; growdsl cannot say what the "
                         f"{layers} layers of the grown model have")
    return [values[0]] * layers


def shape_of(config: PretrainedConfig) -> Shape:
    """The `Shape` a HF config describes, the rest of the config in its `settings`
    (treatments read from `config.growdsl`)."""
    extra = dict(getattr(config, "growdsl", None) or {})
    data = {k: v for k, v in config.to_dict().items() if not k.startswith("_")}
    fam = family(config.model_type)
    shape = shape_from_config(fam.name, data)
    share = int(extra.get("ffn_share", 1))
    return shape.replace(
        ffn=int(extra.get("ffn", shape.ffn * share)), seq=int(extra.get("seq", shape.positions)),
        ffn_share=share, ffn_rank=int(extra.get("ffn_rank", 0)), pool=int(extra.get("pool", 1)),
        pool_mode=str(extra.get("pool_mode", "mean")), submodels=int(extra.get("submodels", 1)))


def model_class(shape: Shape) -> type[PreTrainedModel]:
    """The HF class that runs `shape` (pooled BERT has its own subclass)."""
    if shape.pool > 1:
        return PooledBertForMaskedLM
    cls: type[PreTrainedModel] = getattr(hf, family(shape.family).model_class)
    return cls


def build_from_config(config: PretrainedConfig, seed: int | None = 0) -> PreTrainedModel:
    """A freshly initialised model for `config`, treatments installed."""
    shape = shape_of(config)
    fam = family(shape.family)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = model_class(shape)(config)
        if shape.ffn_rank:
            factorize_ffn(model, fam, shape.layers, shape.ffn_rank, config.initializer_range)
    mask = config.growdsl.get("mask") if getattr(config, "growdsl", None) else None
    if mask:
        install_mask(model, fam, mask)
    return model


def build_for_layout(config: PretrainedConfig, layout: Layout) -> PreTrainedModel:
    """An uninitialised-weights model of `layout`'s class (bare ones without treatments;
    BERT's pooler only when the layout stores one); load its state with `load_state`."""
    if layout.head:
        return build_from_config(config, seed=None)
    if not is_plain(config):
        raise ValueError(f"a bare {layout.architecture} cannot carry growdsl's treatments")
    fam = family(layout.family)
    cls = getattr(hf, fam.bare_class)
    if fam.optional:        # BERT's pooler: built when the layout stores it
        stored = {key for key, _ in layout.extra}
        return cls(config, add_pooling_layer=any(key in stored for key, _ in fam.optional))
    return cls(config)


def build_model(shape: Shape, seed: int = 0) -> PreTrainedModel:
    """A freshly initialised HF model of `shape` (deterministic in `seed`)."""
    return build_from_config(config_for(shape), seed)


def is_plain(config: PretrainedConfig) -> bool:
    """True when the model is a stock HF model (no treatment module, no gate)."""
    shape = shape_of(config)
    extra = getattr(config, "growdsl", None) or {}
    mask = extra.get("mask")
    return not shape.ffn_rank and shape.pool == 1 and not (mask and float(mask["c"]) < 1)


# A model that needs growdsl to compute its function (a masked-growth gate, pooled queries,
# a factorized FFN) keeps its weights under this name: stock `from_pretrained` finds no
# `model.safetensors` and refuses to load it, instead of loading a model that computes
# something else. growdsl reads every `*.safetensors` of a directory.
TREATED_WEIGHTS = "growdsl-model.safetensors"


def weights_name(config: PretrainedConfig) -> str:
    """The weights file of a model with `config`: stock's name, or TREATED_WEIGHTS."""
    return "model.safetensors" if is_plain(config) else TREATED_WEIGHTS


def save_model(model: PreTrainedModel, out_dir: str | Path) -> None:
    """`save_pretrained` (safetensors, tied weights stored once); a treated model's weights
    renamed to TREATED_WEIGHTS (see there)."""
    model.save_pretrained(str(out_dir))
    name = weights_name(model.config)
    if name != "model.safetensors" and (Path(out_dir) / "model.safetensors").exists():
        (Path(out_dir) / "model.safetensors").replace(Path(out_dir) / name)


def load_model(src_dir: str | Path) -> PreTrainedModel:
    """Load a saved model, plain or treated, from a local directory (no hub)."""
    config = hf.AutoConfig.from_pretrained(str(src_dir), local_files_only=True)
    if is_plain(config):
        cls = model_class(shape_of(config))
        return cls.from_pretrained(str(src_dir), local_files_only=True)
    from safetensors.torch import load_file

    model = build_from_config(config, seed=None)
    state: dict[str, torch.Tensor] = {}
    for path in sorted(Path(src_dir).glob("*.safetensors")):
        state.update(load_file(str(path)))
    load_state(model, state)
    return model


def load_state(model: PreTrainedModel, state: dict[str, torch.Tensor]) -> None:
    """Load a (tied-keys-free) state dict; only tied copies may be missing."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(tied_keys(model))
    bad = [k for k in missing if k not in tied]
    if bad or unexpected:
        raise ValueError(f"state does not fit the model: missing {bad}, unexpected {unexpected}")
    model.tie_weights()


def tied_keys(model: nn.Module) -> list[str]:
    """State-dict keys of tied copies: a parameter shared by several modules (GPT-2's head and
    token embedding) is stored once, under its first name; the later names are these. By
    parameter identity, so that a sharded model (FSDP2's DTensors) is read the same way."""
    seen: set[int] = set()
    out = []
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            out.append(name)
        seen.add(id(p))
    return out


def stored_keys(model: nn.Module) -> list[str]:
    """The model's state-dict keys without tied copies (what growth operates on)."""
    drop = set(tied_keys(model))
    return [k for k in model.state_dict() if k not in drop]


def stored_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The model's state dict without tied copies, detached (what growth operates on)."""
    state = model.state_dict()
    return {k: state[k].detach() for k in stored_keys(model)}
