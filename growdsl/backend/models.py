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
from transformers import PretrainedConfig, PreTrainedModel

from growdsl.backend.families import family
from growdsl.backend.families.layout import Layout
from growdsl.backend.pooling import PooledBertForMaskedLM
from growdsl.backend.treatments import factorize_ffn, install_mask
from growdsl.shapes import Shape

_EXTRA = ("ffn", "ffn_share", "ffn_rank", "pool", "pool_mode", "seq", "submodels")
# The config fields `config_for` derives from a shape (the rest are settings).
_SHAPE_KEYS = {
    "bert": ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings"),
    "gpt2": ("n_embd", "n_layer", "n_head", "n_inner", "n_positions"),
    "llama": ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "head_dim", "intermediate_size", "max_position_embeddings"),
}


def config_for(shape: Shape, **overrides: Any) -> PretrainedConfig:
    """The HF config of `shape` (FFN stored size, tied head, treatments in `growdsl`)."""
    special = {"bos_token_id": 0, "eos_token_id": min(1, shape.vocab - 1), "pad_token_id": None}
    common: dict[str, Any] = {"vocab_size": shape.vocab, "tie_word_embeddings": shape.tied,
                              **special}
    config: PretrainedConfig
    if shape.family == "bert":
        config = hf.BertConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                               num_attention_heads=shape.heads, intermediate_size=shape.ffn_stored,
                               max_position_embeddings=shape.positions, **common)
    elif shape.family == "gpt2":
        config = hf.GPT2Config(n_embd=shape.hidden, n_layer=shape.layers, n_head=shape.heads,
                               n_inner=shape.ffn_stored, n_positions=shape.positions, **common)
    elif shape.family == "llama":
        config = hf.LlamaConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                                num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                                head_dim=shape.head_dim, intermediate_size=shape.ffn_stored,
                                max_position_embeddings=shape.positions, **common)
    else:
        raise ValueError(f"unknown family {shape.family!r}")
    if shape.family != "llama" and shape.heads * shape.head_dim != shape.hidden:
        raise ValueError(f"{shape.family}: heads x head_dim must equal hidden")
    config.growdsl = {name: getattr(shape, name) for name in _EXTRA}
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def derive_config(base: PretrainedConfig, shape: Shape) -> PretrainedConfig:
    """`base` (a source checkpoint's config) with `shape`'s shape fields; every other
    setting (activation, norm eps, rope, token ids, `architectures`) is kept."""
    shaped = config_for(shape)
    out = type(base).from_dict(base.to_dict())
    for key in (*_SHAPE_KEYS[shape.family], "vocab_size", "tie_word_embeddings"):
        setattr(out, key, getattr(shaped, key))
    out.growdsl = shaped.growdsl
    return out


def shape_of(config: PretrainedConfig) -> Shape:
    """The `Shape` a HF config describes (treatments read from `config.growdsl`)."""
    extra = dict(getattr(config, "growdsl", None) or {})
    fam = config.model_type
    if fam == "bert":
        dims = (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
                config.num_attention_heads, config.intermediate_size,
                config.max_position_embeddings)
    elif fam == "gpt2":
        dims = (config.n_layer, config.n_embd, config.n_head, config.n_head,
                config.n_inner or 4 * config.n_embd, config.n_positions)
    elif fam == "llama":
        dims = (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
                config.num_key_value_heads or config.num_attention_heads,
                config.intermediate_size, config.max_position_embeddings)
    else:
        raise ValueError(f"unsupported model type {fam!r}")
    layers, hidden, heads, kv, stored, positions = dims
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    share = int(extra.get("ffn_share", 1))
    return Shape(family=fam, layers=layers, hidden=hidden, heads=heads, kv_heads=kv,
                 head_dim=head_dim, ffn=int(extra.get("ffn", stored * share)),
                 vocab=config.vocab_size, seq=int(extra.get("seq", positions)),
                 positions=positions, tied=bool(config.tie_word_embeddings), ffn_share=share,
                 ffn_rank=int(extra.get("ffn_rank", 0)), pool=int(extra.get("pool", 1)),
                 pool_mode=str(extra.get("pool_mode", "mean")),
                 submodels=int(extra.get("submodels", 1)))


def model_class(shape: Shape) -> type[PreTrainedModel]:
    """The HF class that runs `shape` (pooled BERT has its own subclass)."""
    if shape.family == "bert" and shape.pool > 1:
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
    cls = getattr(hf, family(layout.family).bare_class)
    if layout.family == "bert":
        pooler = any(key.startswith("bert.pooler.") for key, _ in layout.extra)
        return cls(config, add_pooling_layer=pooler)
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


def tied_keys(model: PreTrainedModel) -> list[str]:
    """State-dict keys that share storage with an earlier key (tied copies, stored once)."""
    seen: set[int] = set()
    out = []
    for key, value in model.state_dict().items():
        ptr = value.untyped_storage().data_ptr()
        if ptr in seen:
            out.append(key)
        seen.add(ptr)
    return out


def stored_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The model's state dict without tied copies, detached (what growth operates on)."""
    drop = set(tied_keys(model))
    return {k: v.detach() for k, v in model.state_dict().items() if k not in drop}
