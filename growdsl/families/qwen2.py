"""Qwen2 (`Qwen2ForCausalLM`, Yang et al. 2024, "Qwen2 Technical Report"): the LLaMA-style
decoder of `_decoder` with biases on the query, key and value projections (always; none on
the output projection or the FFN), and an optional sliding attention window on the layers
from `max_window_layers` on (`use_sliding_window`, `layer_types`).
"""

from __future__ import annotations

from growdsl.families import _decoder
from growdsl.families.base import CARRIED, Family, Field

FIELDS = {
    **_decoder.FIELDS,
    **_decoder.SLIDING,
    "use_sliding_window": Field(effect=CARRIED, doc="the window applies at all"),
    "max_window_layers": Field(effect=CARRIED, doc="layers below this attend in full"),
    "layer_types": _decoder.LAYER_TYPES,
}

FAMILY = Family(
    name="qwen2",
    doc="Qwen2 causal LM (LLaMA-style, q/k/v biases, optional sliding window)",
    config_class="Qwen2Config", model_class="Qwen2ForCausalLM", bare_class="Qwen2Model",
    hf_fields=_decoder.HF_FIELDS, free_head_dim=True, grouped_query=True, tied_default=False,
    pre_ln=True, norm="RMSNorm", gated_ffn=True, positions="rotary", objective="clm",
    layer_prefix="model.layers.{i}.",
    layer_tensors=_decoder.layer_tensors(None, False, False),
    global_tensors=_decoder.GLOBAL,
    ffn_in=("mlp.gate_proj", "mlp.up_proj"), ffn_out="mlp.down_proj",
    residual_out=("self_attn.o_proj", "mlp.down_proj"),
    base_prefix="model.", head_prefixes=("lm_head.",), fields=FIELDS,
    inert=_decoder.INERT_TENSORS,
    # Qwen2-0.5B's Hugging Face config.json (tied head, 2 key/value heads).
    presets={"qwen2-0.5b": {
        "num_hidden_layers": 24, "hidden_size": 896, "num_attention_heads": 14,
        "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936,
        "max_position_embeddings": 32768, "tie_word_embeddings": True,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "use_sliding_window": False}},
    default_preset="qwen2-0.5b",
    paper="Yang et al. 2024 (Qwen2 Technical Report)",
)
