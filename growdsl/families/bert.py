"""BERT (`BertForMaskedLM`, Devlin et al., NAACL 2019): post-LN, learned positions, token
type embeddings, masked-LM objective with a dense transform before the (tied) decoder; the
bare `BertModel` has no `bert.` prefix, no `cls.` head and an optional pooler.

The MLM transform's LayerNorm feeds the decoder, so with a tied head it consumes the
residual space (role `t`).
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
    KV_O,
    Q_I,
    Q_O,
    REFUSED,
    V_O,
    Family,
    Field,
    Inert,
    Tensor,
)

LAYER = (
    Tensor(key="attention.self.query.weight", axes=(Q_O, D_I)),
    Tensor(key="attention.self.query.bias", axes=(Q_O,)),
    Tensor(key="attention.self.key.weight", axes=(KV_O, D_I)),
    Tensor(key="attention.self.key.bias", axes=(KV_O,)),
    Tensor(key="attention.self.value.weight", axes=(KV_O, D_I)),
    Tensor(key="attention.self.value.bias", axes=(KV_O,)),
    Tensor(key="attention.output.dense.weight", axes=(D_O, Q_I)),
    Tensor(key="attention.output.dense.bias", axes=(D_O,)),
    Tensor(key="attention.output.LayerNorm.weight", axes=(D_O,)),
    Tensor(key="attention.output.LayerNorm.bias", axes=(D_O,)),
    Tensor(key="intermediate.dense.weight", axes=(F_O, D_I)),
    Tensor(key="intermediate.dense.bias", axes=(F_O,)),
    Tensor(key="output.dense.weight", axes=(D_O, F_I)),
    Tensor(key="output.dense.bias", axes=(D_O,)),
    Tensor(key="output.LayerNorm.weight", axes=(D_O,)),
    Tensor(key="output.LayerNorm.bias", axes=(D_O,)),
)

GLOBAL = (
    Tensor(key="bert.embeddings.word_embeddings.weight", axes=(V_O, D_O)),
    Tensor(key="bert.embeddings.position_embeddings.weight", axes=(("P", "o"), D_O)),
    Tensor(key="bert.embeddings.token_type_embeddings.weight", axes=(("T", "o"), D_O)),
    Tensor(key="bert.embeddings.LayerNorm.weight", axes=(D_O,)),
    Tensor(key="bert.embeddings.LayerNorm.bias", axes=(D_O,)),
    Tensor(key="cls.predictions.bias", axes=(V_O,)),
    Tensor(key="cls.predictions.transform.dense.weight", axes=(D_O, D_I)),
    Tensor(key="cls.predictions.transform.dense.bias", axes=(D_O,)),
    Tensor(key="cls.predictions.transform.LayerNorm.weight", axes=(D_T,)),
    Tensor(key="cls.predictions.transform.LayerNorm.bias", axes=(D_T,)),
    Tensor(key="cls.predictions.decoder.weight", axes=(V_O, D_I), when="untied"),
    Tensor(key="cls.predictions.decoder.bias", axes=(V_O,), when="untied"),
)

# `BertModel`'s pooler, tanh(W h_CLS + b): present or not in a bare checkpoint.
POOLER = (("bert.pooler.dense.weight", (D_O, D_I)), ("bert.pooler.dense.bias", (D_O,)))

# Stored tensors the classes never read (transformers ignores them on load too).
INERT_TENSORS = (
    Inert(pattern="bert.embeddings.position_ids",
          why="position index buffer (saved by older transformers; recomputed)"),
    Inert(pattern="bert.pooler.*", layout="head",
          why="BertModel's pooler, which BertForMaskedLM does not have"),
    Inert(pattern="cls.seq_relationship.*", layout="head",
          why="BertForPreTraining's next-sentence head, which BertForMaskedLM does not have"),
)

FIELDS = {
    "hidden_act": Field(effect=CARRIED, doc="FFN activation"),
    "layer_norm_eps": Field(effect=CARRIED, doc="LayerNorm epsilon"),
    "type_vocab_size": Field(effect=CARRIED, doc="rows of the token type table (space T)"),
    "hidden_dropout_prob": Field(effect=INERT, doc="dropout (training only)"),
    "attention_probs_dropout_prob": Field(effect=INERT, doc="dropout (training only)"),
    "classifier_dropout": Field(effect=INERT, doc="dropout of a classifier head"),
    "position_embedding_type": Field(
        effect=REFUSED, ok=("absolute",), doc="only absolute position tables are grown"),
    "is_decoder": Field(effect=REFUSED, ok=(False,), doc="growdsl grows the encoder"),
    "add_cross_attention": Field(effect=REFUSED, ok=(False,), doc="no cross-attention"),
}


def _preset(layers: int, hidden: int, heads: int) -> dict[str, int]:
    return {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
            "intermediate_size": 4 * hidden, "vocab_size": 30522,
            "max_position_embeddings": 512}


FAMILY = Family(
    name="bert",
    doc="BERT masked LM (post-LN, learned positions, token types)",
    config_class="BertConfig", model_class="BertForMaskedLM", bare_class="BertModel",
    hf_fields={"layers": "num_hidden_layers", "hidden": "hidden_size",
               "heads": "num_attention_heads", "ffn": "intermediate_size",
               "vocab": "vocab_size", "positions": "max_position_embeddings",
               "tied": "tie_word_embeddings"},
    pre_ln=False, norm="LayerNorm", positions="learned", objective="mlm", tokenizer="WordPiece",
    mlm_transform=True, token_types=True, pooling=True,
    layer_prefix="bert.encoder.layer.{i}.", layer_tensors=LAYER, global_tensors=GLOBAL,
    optional=POOLER,
    ffn_in=("intermediate.dense",), ffn_out="output.dense",
    residual_out=("attention.output.dense", "output.dense"),
    position_key="bert.embeddings.position_embeddings.weight",
    base_prefix="bert.", head_prefixes=("cls.",), fields=FIELDS, inert=INERT_TENSORS,
    # Devlin et al. 2019 and Google's BERT miniatures (Turc et al. 2019).
    presets={"bert-tiny": _preset(2, 128, 2), "bert-mini": _preset(4, 256, 4),
             "bert-small": _preset(4, 512, 8), "bert-medium": _preset(8, 512, 8),
             "bert-base": _preset(12, 768, 12), "bert-large": _preset(24, 1024, 16)},
    default_preset="bert-base",
    paper="Devlin et al., NAACL 2019",
)
