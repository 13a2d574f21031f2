"""LLaMA (`LlamaForCausalLM`, Touvron et al. 2023): the decoder of `_decoder`, with optional
biases on every attention projection (`attention_bias`) and FFN matrix (`mlp_bias`).
"""

from __future__ import annotations

from growdsl.families import _decoder
from growdsl.families.base import TENSORS, Family, Field

FIELDS = {
    **_decoder.FIELDS,
    "attention_bias": Field(effect=TENSORS, doc="q/k/v/o projection biases"),
    "mlp_bias": Field(effect=TENSORS, doc="gate/up/down projection biases"),
}


def _preset(layers: int, hidden: int, heads: int, kv: int, ffn: int, vocab: int,
            positions: int, **settings: object) -> dict[str, object]:
    return {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
            "num_key_value_heads": kv, "intermediate_size": ffn, "vocab_size": vocab,
            "max_position_embeddings": positions, "tie_word_embeddings": False, **settings}


FAMILY = Family(
    name="llama",
    doc="LLaMA causal LM (RMSNorm, SwiGLU, rotary, grouped-query attention)",
    config_class="LlamaConfig", model_class="LlamaForCausalLM", bare_class="LlamaModel",
    hf_fields=_decoder.HF_FIELDS, free_head_dim=True, grouped_query=True, tied_default=False,
    pre_ln=True, norm="RMSNorm", gated_ffn=True, positions="rotary", objective="clm",
    layer_prefix="model.layers.{i}.",
    layer_tensors=_decoder.layer_tensors("attention_bias", "attention_bias", "mlp_bias"),
    global_tensors=_decoder.GLOBAL,
    ffn_in=("mlp.gate_proj", "mlp.up_proj"), ffn_out="mlp.down_proj",
    residual_out=("self_attn.o_proj", "mlp.down_proj"),
    base_prefix="model.", head_prefixes=("lm_head.",), fields=FIELDS,
    inert=_decoder.INERT_TENSORS,
    # Touvron et al. 2023 (LLaMA, Llama 2), Meta's Llama 3 configs, TinyLlama (Zhang et al.
    # 2024): the values of their Hugging Face config.json files.
    presets={
        "tinyllama-1.1b": _preset(22, 2048, 32, 4, 5632, 32000, 2048, rms_norm_eps=1e-5),
        "llama-7b": _preset(32, 4096, 32, 32, 11008, 32000, 2048, rms_norm_eps=1e-6),
        "llama-2-7b": _preset(32, 4096, 32, 32, 11008, 32000, 4096, rms_norm_eps=1e-5),
        "llama-3-8b": _preset(32, 4096, 32, 8, 14336, 128256, 8192, rms_norm_eps=1e-5,
                              rope_theta=500000.0),
    },
    default_preset="llama-7b",
    paper="Touvron et al. 2023",
)
