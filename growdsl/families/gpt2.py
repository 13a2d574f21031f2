"""GPT-2 (`GPT2LMHeadModel`, Radford et al. 2019): pre-LN, learned positions, `Conv1D`
weights stored [in, out], fused `c_attn` (q | k | v along the output axis, space `QKV`),
tied head behind `ln_f`; `n_inner: null` means 4 x hidden.
"""

from __future__ import annotations

from growdsl.families.base import (
    CARRIED,
    D_I,
    D_O,
    D_T,
    F_I,
    F_O,
    INERT,
    Q_I,
    QKV_O,
    REFUSED,
    V_O,
    Family,
    Field,
    Inert,
    Tensor,
)

LAYER = (
    Tensor(key="ln_1.weight", axes=(D_O,)),
    Tensor(key="ln_1.bias", axes=(D_O,)),
    Tensor(key="attn.c_attn.weight", axes=(D_I, QKV_O)),
    Tensor(key="attn.c_attn.bias", axes=(QKV_O,)),
    Tensor(key="attn.c_proj.weight", axes=(Q_I, D_O)),
    Tensor(key="attn.c_proj.bias", axes=(D_O,)),
    Tensor(key="ln_2.weight", axes=(D_O,)),
    Tensor(key="ln_2.bias", axes=(D_O,)),
    Tensor(key="mlp.c_fc.weight", axes=(D_I, F_O)),
    Tensor(key="mlp.c_fc.bias", axes=(F_O,)),
    Tensor(key="mlp.c_proj.weight", axes=(F_I, D_O)),
    Tensor(key="mlp.c_proj.bias", axes=(D_O,)),
)

GLOBAL = (
    Tensor(key="transformer.wte.weight", axes=(V_O, D_O)),
    Tensor(key="transformer.wpe.weight", axes=(("P", "o"), D_O)),
    Tensor(key="transformer.ln_f.weight", axes=(D_T,)),
    Tensor(key="transformer.ln_f.bias", axes=(D_T,)),
    Tensor(key="lm_head.weight", axes=(V_O, D_I), when="untied"),
)

# The causal-mask buffers older checkpoints store (transformers ignores them on load).
INERT_TENSORS = (
    Inert(pattern="transformer.h.*.attn.bias", why="causal-mask buffer (a constant)"),
    Inert(pattern="transformer.h.*.attn.masked_bias", why="masked-score constant buffer"),
)

_DEPTH = ("stack", "interleave", "identity", "masked")
FIELDS = {
    "activation_function": Field(effect=CARRIED, doc="FFN activation"),
    "layer_norm_epsilon": Field(effect=CARRIED, doc="LayerNorm epsilon"),
    "scale_attn_weights": Field(effect=CARRIED, doc="scores divided by sqrt(head size)"),
    "reorder_and_upcast_attn": Field(effect=CARRIED, doc="attention computed in fp32"),
    "scale_attn_by_inverse_layer_idx": Field(
        effect=CARRIED, ok=(False,),
        doc="scores also divided by the layer's index + 1, so a layer computes another "
            "function at another depth",
        refused_by={op: "layers moved to another depth compute another function under "
                        "`scale_attn_by_inverse_layer_idx`" for op in _DEPTH}),
    "add_cross_attention": Field(effect=REFUSED, ok=(False,), doc="no cross-attention"),
    "n_ctx": Field(effect=INERT, doc="legacy copy of n_positions"),
    **{name: Field(effect=INERT, doc="dropout (training only)")
       for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout")},
    **{name: Field(effect=INERT, doc="sequence-summary head (not grown)")
       for name in ("summary_type", "summary_use_proj", "summary_activation",
                    "summary_proj_to_labels")},
}


def _preset(layers: int, hidden: int, heads: int) -> dict[str, int]:
    return {"n_layer": layers, "n_embd": hidden, "n_head": heads, "n_inner": 4 * hidden,
            "vocab_size": 50257, "n_positions": 1024}


FAMILY = Family(
    name="gpt2",
    doc="GPT-2 causal LM (pre-LN, learned positions, Conv1D, fused QKV)",
    config_class="GPT2Config", model_class="GPT2LMHeadModel", bare_class="GPT2Model",
    hf_fields={"layers": "n_layer", "hidden": "n_embd", "heads": "n_head", "ffn": "n_inner",
               "vocab": "vocab_size", "positions": "n_positions",
               "tied": "tie_word_embeddings"},
    ffn_null_multiple=4,
    pre_ln=True, norm="LayerNorm", positions="learned", objective="clm",
    layer_prefix="transformer.h.{i}.", layer_tensors=LAYER, global_tensors=GLOBAL,
    ffn_in=("mlp.c_fc",), ffn_out="mlp.c_proj", residual_out=("attn.c_proj", "mlp.c_proj"),
    conv1d=True, position_key="transformer.wpe.weight",
    base_prefix="transformer.", head_prefixes=("lm_head.",), fields=FIELDS,
    inert=INERT_TENSORS,
    # Radford et al. 2019 (Hugging Face configs).
    presets={"gpt2": _preset(12, 768, 12), "gpt2-medium": _preset(24, 1024, 16),
             "gpt2-large": _preset(36, 1280, 20), "gpt2-xl": _preset(48, 1600, 25)},
    default_preset="gpt2",
    paper="Radford et al. 2019",
)
