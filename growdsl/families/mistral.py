"""Mistral (`MistralForCausalLM`, Jiang et al. 2023, "Mistral 7B"): the LLaMA-style decoder
of `_decoder` without biases, with sliding-window attention (`sliding_window` tokens; null
for full attention) and an explicit `head_dim`.
"""

from __future__ import annotations

from growdsl.families import _decoder
from growdsl.families.base import Family

FAMILY = Family(
    name="mistral",
    doc="Mistral causal LM (LLaMA-style, sliding-window attention)",
    config_class="MistralConfig", model_class="MistralForCausalLM", bare_class="MistralModel",
    hf_fields=_decoder.HF_FIELDS, free_head_dim=True, grouped_query=True, tied_default=False,
    pre_ln=True, norm="RMSNorm", gated_ffn=True, positions="rotary", objective="clm",
    layer_prefix="model.layers.{i}.",
    layer_tensors=_decoder.layer_tensors(False, False, False),
    global_tensors=_decoder.GLOBAL,
    ffn_in=("mlp.gate_proj", "mlp.up_proj"), ffn_out="mlp.down_proj",
    residual_out=("self_attn.o_proj", "mlp.down_proj"),
    base_prefix="model.", head_prefixes=("lm_head.",),
    fields={**_decoder.FIELDS, **_decoder.SLIDING}, inert=_decoder.INERT_TENSORS,
    # Mistral-7B-v0.1's Hugging Face config.json.
    presets={"mistral-7b": {
        "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
        "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000,
        "max_position_embeddings": 32768, "tie_word_embeddings": False,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 4096}},
    default_preset="mistral-7b",
    paper="Jiang et al. 2023 (Mistral 7B)",
)
