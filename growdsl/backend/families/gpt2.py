"""GPT-2 (`GPT2LMHeadModel`): pre-LN, `Conv1D` weights stored [in, out], fused `c_attn`
(q | k | v along the output axis, space `QKV`), tied head behind `ln_f`.

Radford et al. 2019.
"""

from __future__ import annotations

from growdsl.backend.families import D_I, D_O, F_I, F_O, Q_I, Family, WeightMap
from growdsl.shapes import Shape

QKV_O = ("QKV", "o")


def layer_axes(shape: Shape) -> WeightMap:
    return {
        "ln_1.weight": (D_O,),
        "ln_1.bias": (D_O,),
        "attn.c_attn.weight": (D_I, QKV_O),
        "attn.c_attn.bias": (QKV_O,),
        "attn.c_proj.weight": (Q_I, D_O),
        "attn.c_proj.bias": (D_O,),
        "ln_2.weight": (D_O,),
        "ln_2.bias": (D_O,),
        "mlp.c_fc.weight": (D_I, F_O),
        "mlp.c_fc.bias": (F_O,),
        "mlp.c_proj.weight": (F_I, D_O),
        "mlp.c_proj.bias": (D_O,),
    }


def global_axes(shape: Shape) -> WeightMap:
    head_norm = D_I if shape.tied else D_O
    out: WeightMap = {
        "transformer.wte.weight": (("V", "o"), D_O),
        "transformer.wpe.weight": (("P", "o"), D_O),
        "transformer.ln_f.weight": (head_norm,),
        "transformer.ln_f.bias": (head_norm,),
    }
    if not shape.tied:
        out["lm_head.weight"] = (("V", "o"), D_I)
    return out


FAMILY = Family(
    name="gpt2", model_class="GPT2LMHeadModel", layer_prefix="transformer.h.{i}.",
    layer_axes=layer_axes, global_axes=global_axes,
    ffn_in=("mlp.c_fc",), ffn_out="mlp.c_proj",
    residual_out=("attn.c_proj", "mlp.c_proj"), conv1d=True,
    position_key="transformer.wpe.weight",
    base_prefix="transformer.", bare_class="GPT2Model", head_prefixes=("lm_head.",),
)
