"""LLaMA (`LlamaForCausalLM`): RMSNorm, SwiGLU (gate and up share one FFN mapping), rotary
positions (no table), grouped-query attention (`KV` space), tied or untied head.

Touvron et al. 2023.
"""

from __future__ import annotations

from growdsl.backend.families import D_I, D_O, F_I, F_O, KV_O, Q_I, Q_O, Family, WeightMap
from growdsl.shapes import Shape


def layer_axes(shape: Shape) -> WeightMap:
    return {
        "self_attn.q_proj.weight": (Q_O, D_I),
        "self_attn.k_proj.weight": (KV_O, D_I),
        "self_attn.v_proj.weight": (KV_O, D_I),
        "self_attn.o_proj.weight": (D_O, Q_I),
        "mlp.gate_proj.weight": (F_O, D_I),
        "mlp.up_proj.weight": (F_O, D_I),
        "mlp.down_proj.weight": (D_O, F_I),
        "input_layernorm.weight": (D_O,),
        "post_attention_layernorm.weight": (D_O,),
    }


def global_axes(shape: Shape) -> WeightMap:
    out: WeightMap = {
        "model.embed_tokens.weight": (("V", "o"), D_O),
        "model.norm.weight": (D_I if shape.tied else D_O,),
    }
    if not shape.tied:
        out["lm_head.weight"] = (("V", "o"), D_I)
    return out


FAMILY = Family(
    name="llama", model_class="LlamaForCausalLM", layer_prefix="model.layers.{i}.",
    layer_axes=layer_axes, global_axes=global_axes,
    ffn_in=("mlp.gate_proj", "mlp.up_proj"), ffn_out="mlp.down_proj",
    residual_out=("self_attn.o_proj", "mlp.down_proj"), ffn_bias=False,
    base_prefix="model.", bare_class="LlamaModel", head_prefixes=("lm_head.",),
)
