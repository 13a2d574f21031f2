"""What the LLaMA-style decoders (`llama`, `qwen2`, `mistral`) share: RMSNorm, pre-LN,
SwiGLU (gate and up share one FFN mapping), rotary positions (no table), grouped-query
attention (`KV` space), tied or untied head. Each family file picks its biases and
config fields from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from growdsl.families.base import (
    CARRIED,
    D_I,
    D_O,
    D_T,
    F_I,
    F_O,
    INERT,
    KV_O,
    PER_LAYER,
    Q_I,
    Q_O,
    V_O,
    Field,
    Inert,
    Tensor,
)


def layer_tensors(qkv_bias: str | bool | None, o_bias: str | bool | None,
                  mlp_bias: str | bool | None) -> tuple[Tensor, ...]:
    """A decoder layer's tensors; a bias argument is False (none), None (always there) or
    the boolean config field that switches it on."""

    def bias(key: str, axes: Any, flag: str | bool | None) -> tuple[Tensor, ...]:
        if flag is False:
            return ()
        return (Tensor(key=key, axes=axes, when=flag if isinstance(flag, str) else None),)

    return (
        Tensor(key="self_attn.q_proj.weight", axes=(Q_O, D_I)),
        *bias("self_attn.q_proj.bias", (Q_O,), qkv_bias),
        Tensor(key="self_attn.k_proj.weight", axes=(KV_O, D_I)),
        *bias("self_attn.k_proj.bias", (KV_O,), qkv_bias),
        Tensor(key="self_attn.v_proj.weight", axes=(KV_O, D_I)),
        *bias("self_attn.v_proj.bias", (KV_O,), qkv_bias),
        Tensor(key="self_attn.o_proj.weight", axes=(D_O, Q_I)),
        *bias("self_attn.o_proj.bias", (D_O,), o_bias),
        Tensor(key="mlp.gate_proj.weight", axes=(F_O, D_I)),
        *bias("mlp.gate_proj.bias", (F_O,), mlp_bias),
        Tensor(key="mlp.up_proj.weight", axes=(F_O, D_I)),
        *bias("mlp.up_proj.bias", (F_O,), mlp_bias),
        Tensor(key="mlp.down_proj.weight", axes=(D_O, F_I)),
        *bias("mlp.down_proj.bias", (D_O,), mlp_bias),
        Tensor(key="input_layernorm.weight", axes=(D_O,)),
        Tensor(key="post_attention_layernorm.weight", axes=(D_O,)),
    )


GLOBAL = (
    Tensor(key="model.embed_tokens.weight", axes=(V_O, D_O)),
    Tensor(key="model.norm.weight", axes=(D_T,)),
    Tensor(key="lm_head.weight", axes=(V_O, D_I), when="untied"),
)

# Older checkpoints store the rotary frequencies (per layer, `self_attn.rotary_emb.inv_freq`);
# transformers recomputes them from the config and ignores stored ones.
INERT_TENSORS = (
    Inert(pattern="model.*rotary_emb.*inv_freq",
          why="rotary frequency buffer (recomputed from the config; stock loading ignores it)"),
)

HF_FIELDS = {"layers": "num_hidden_layers", "hidden": "hidden_size",
             "heads": "num_attention_heads", "kv_heads": "num_key_value_heads",
             "ffn": "intermediate_size", "vocab": "vocab_size",
             "positions": "max_position_embeddings", "head_dim": "head_dim",
             "tied": "tie_word_embeddings"}

# Rope variants whose frequencies do not read `max_position_embeddings`: moving the
# limit (`extend`) keeps them.
_EXTENDABLE = ("default", "linear", "llama3")


def _rope_keeps_limit(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return value is None
    return value.get("rope_type", value.get("type", "default")) in _EXTENDABLE


_OK_DOC = "null or a rope_type of " + ", ".join(_EXTENDABLE)
_ROPE_REFUSAL = {"extend": "this rope scaling reads max_position_embeddings, so moving the "
                           "limit changes every position's frequencies"}

FIELDS: dict[str, Field] = {
    "hidden_act": Field(effect=CARRIED, doc="FFN activation"),
    "rms_norm_eps": Field(effect=CARRIED, doc="RMSNorm epsilon"),
    "rope_theta": Field(effect=CARRIED, doc="rotary base"),
    "rope_scaling": Field(effect=CARRIED, doc="rotary scaling", ok=_rope_keeps_limit,
                          refused_by=_ROPE_REFUSAL, ok_doc=_OK_DOC),
    "rope_parameters": Field(effect=CARRIED, doc="rotary base and scaling (transformers 5)",
                             ok=_rope_keeps_limit, refused_by=_ROPE_REFUSAL, ok_doc=_OK_DOC),
    "attention_dropout": Field(effect=INERT, doc="dropout (training only)"),
    "pretraining_tp": Field(effect=INERT, doc="tensor-parallel slicing of the same product"),
}

SLIDING: dict[str, Field] = {
    "sliding_window": Field(effect=CARRIED, doc="attention window (tokens); positions "
                                                "further back are masked"),
}

LAYER_TYPES = Field(effect=PER_LAYER, doc="attention kind of each layer (full or sliding)",
                    ok=lambda v: not isinstance(v, list) or len(set(map(str, v))) <= 1)
