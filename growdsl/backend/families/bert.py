"""BERT (`BertForMaskedLM`): post-LN, token type embeddings, MLM transform, tied decoder;
the bare `BertModel` (no `bert.` prefix, no `cls.` head, optional pooler) through
`families.layout`.

Devlin et al., NAACL 2019. The MLM transform's LayerNorm feeds the (tied) decoder, so it
consumes the residual space when the head is tied.
"""

from __future__ import annotations

from growdsl.backend.families import D_I, D_O, F_I, F_O, KV_O, Q_I, Q_O, Family, WeightMap
from growdsl.shapes import Shape


def layer_axes(shape: Shape) -> WeightMap:
    return {
        "attention.self.query.weight": (Q_O, D_I),
        "attention.self.query.bias": (Q_O,),
        "attention.self.key.weight": (KV_O, D_I),
        "attention.self.key.bias": (KV_O,),
        "attention.self.value.weight": (KV_O, D_I),
        "attention.self.value.bias": (KV_O,),
        "attention.output.dense.weight": (D_O, Q_I),
        "attention.output.dense.bias": (D_O,),
        "attention.output.LayerNorm.weight": (D_O,),
        "attention.output.LayerNorm.bias": (D_O,),
        "intermediate.dense.weight": (F_O, D_I),
        "intermediate.dense.bias": (F_O,),
        "output.dense.weight": (D_O, F_I),
        "output.dense.bias": (D_O,),
        "output.LayerNorm.weight": (D_O,),
        "output.LayerNorm.bias": (D_O,),
    }


def global_axes(shape: Shape) -> WeightMap:
    head_norm = D_I if shape.tied else D_O
    out: WeightMap = {
        "bert.embeddings.word_embeddings.weight": (("V", "o"), D_O),
        "bert.embeddings.position_embeddings.weight": (("P", "o"), D_O),
        "bert.embeddings.token_type_embeddings.weight": (("T", "o"), D_O),
        "bert.embeddings.LayerNorm.weight": (D_O,),
        "bert.embeddings.LayerNorm.bias": (D_O,),
        "cls.predictions.bias": (("V", "o"),),
        "cls.predictions.transform.dense.weight": (D_O, D_I),
        "cls.predictions.transform.dense.bias": (D_O,),
        "cls.predictions.transform.LayerNorm.weight": (head_norm,),
        "cls.predictions.transform.LayerNorm.bias": (head_norm,),
    }
    if not shape.tied:
        out["cls.predictions.decoder.weight"] = (("V", "o"), D_I)
        out["cls.predictions.decoder.bias"] = (("V", "o"),)
    return out


# `BertModel`'s pooler, tanh(W h_CLS + b): present or not in a bare checkpoint.
POOLER = (("bert.pooler.dense.weight", (D_O, D_I)), ("bert.pooler.dense.bias", (D_O,)))


FAMILY = Family(
    name="bert", model_class="BertForMaskedLM", layer_prefix="bert.encoder.layer.{i}.",
    layer_axes=layer_axes, global_axes=global_axes,
    ffn_in=("intermediate.dense",), ffn_out="output.dense",
    residual_out=("attention.output.dense", "output.dense"),
    position_key="bert.embeddings.position_embeddings.weight",
    base_prefix="bert.", bare_class="BertModel", head_prefixes=("cls.",),
    optional=POOLER,
)
