"""The `Family` record: everything growdsl asks about one model family, as data (no torch).

A family file (`growdsl/families/<name>.py`) builds one `Family`: its Hugging Face names
(`model_type`, config class, model classes, key prefixes), the config field that holds
each shape dimension, its architecture (pre- or post-LN, norm, gated FFN, kind of
positions, objective), its weight map (every tensor with the spaces of its axes), its
presets (each a config), and the config fields it understands (`Field`: what a field does
and which operators cannot keep it).

Weight maps: spaces `D` residual stream (hidden), `Q` query units (heads x head_dim), `KV`
key/value units (kv_heads x head_dim), `QKV` GPT-2's fused [q | k | v] units, `F` stored
FFN units, `R` factorization rank, `V` vocabulary, `P` positions, `T` token types. Each axis
has a role: `o` (the tensor produces this space: growth copies the slice), `i` (it consumes
it: growth copies the slice and divides by the copy count, the Net2Net rule) or `t` (the
norm in front of the LM head: `i` when the head is tied, so that dividing its gain keeps
tied logits exact, `o` when not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

Axis = tuple[str, str]          # (space, role)
Axes = tuple[Axis, ...]
WeightMap = dict[str, Axes]

D_O, D_I, D_T, F_O, F_I = ("D", "o"), ("D", "i"), ("D", "t"), ("F", "o"), ("F", "i")
Q_O, Q_I, KV_O, QKV_O, V_O = ("Q", "o"), ("Q", "i"), ("KV", "o"), ("QKV", "o"), ("V", "o")

# Shape fields a family maps to config keys (`Family.hf_fields`).
SHAPE_FIELDS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab",
                "positions", "tied")


@dataclass(frozen=True, kw_only=True, slots=True)
class Tensor:
    """One stored tensor of the weight map: its key (a suffix for per-layer tensors), the
    spaces of its axes, and the condition under which the model has it: `untied` (an LM
    head of its own) or the name of a boolean config field (`attention_bias`)."""

    key: str
    axes: Axes
    when: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Inert:
    """Stored tensors outside the weight map that the family's model class never reads, so
    growth may leave them out (`grow` and `run` name them): `pattern` a glob over weight-map
    (canonical) keys, `why` in words, `layout` the checkpoints it holds for: `any`, `head`
    (the full model's class) or `bare` (the base model's). Every other tensor outside the
    map is refused unless the user drops it by name (E742)."""

    pattern: str
    why: str
    layout: str = "any"

    def covers(self, key: str, head: bool) -> bool:
        """True when canonical `key` of a checkpoint with (`head`) or without an LM head is
        one of these."""
        if self.layout != "any" and (self.layout == "head") != head:
            return False
        return fnmatchcase(key, self.pattern)


# What a config field does to the function.
INERT = "inert"          # nothing (training-only, bookkeeping): carried as given
CARRIED = "carried"      # the function depends on it; every operator keeps it as given
TENSORS = "tensors"      # switches tensors of the weight map on (biases): grown with them
PER_LAYER = "per-layer"  # one value per layer (`layer_types`): depth growth repeats a
#                          uniform list, and is refused on a mixed one
REFUSED = "refused"      # growdsl cannot keep it at any value but `ok`


@dataclass(frozen=True, kw_only=True, slots=True)
class Field:
    """A config field a family understands. `ok`: the values at which it needs nothing of
    an operator (a tuple, or a test; None: any value); `refused_by` maps an operator name
    to why that operator cannot keep the field at another value (for a `refused` field, no
    value outside `ok` is kept by anything)."""

    effect: str
    doc: str
    ok: tuple[Any, ...] | Callable[[Any], bool] | None = None
    refused_by: Mapping[str, str] = field(default_factory=dict)
    ok_doc: str = ""                                # `ok` in words, for the docs

    def allows(self, value: Any) -> bool:
        """True when `value` asks nothing of any operator."""
        if self.ok is None:
            return True
        if callable(self.ok):
            return bool(self.ok(value))
        return value in self.ok


# Fields every `PretrainedConfig` has, and training-time settings shared by families:
# none of them changes what a model computes in eval mode.
COMMON_FIELDS: dict[str, Field] = {
    **{name: Field(effect=INERT, doc="transformers bookkeeping") for name in (
        "_name_or_path", "architectures", "transformers_version", "model_type", "dtype",
        "torch_dtype", "return_dict", "output_hidden_states", "output_attentions",
        "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id",
        "problem_type", "use_cache", "torchscript", "tokenizer_class", "prefix",
        "task_specific_params", "finetuning_task", "num_labels", "growdsl",
        "_attn_implementation", "attn_implementation", "_commit_hash")},
    **{name: Field(effect=INERT, doc="special token id (data, not weights)") for name in (
        "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "unk_token_id",
        "decoder_start_token_id")},
    "initializer_range": Field(effect=INERT, doc="std of fresh weights (new units use it)"),
    # older configs (transformers < 4.11) store it: activation recomputation in training
    "gradient_checkpointing": Field(effect=INERT, doc="training-time memory setting"),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Family:
    """One model family (see the module docstring)."""

    name: str                                       # HF `model_type`
    doc: str
    config_class: str                               # "LlamaConfig"
    model_class: str                                # with its LM head
    bare_class: str                                 # the headless base model
    hf_fields: Mapping[str, str]                    # shape field -> config key
    ffn_null_multiple: int = 0                      # a null FFN key means this x hidden
    tied_default: bool = True                       # the config class's tie_word_embeddings
    free_head_dim: bool = False                     # head_dim may differ from hidden / heads
    grouped_query: bool = False                     # kv_heads may differ from heads
    pre_ln: bool = True
    norm: str = "LayerNorm"                         # or "RMSNorm"
    gated_ffn: bool = False                         # SwiGLU: gate, up, down
    positions: str = "learned"                      # a position table, or "rotary"
    objective: str = "clm"                          # or "mlm" (BERT's masked LM)
    tokenizer: str = "byte-level BPE"               # what `run` trains when none is given
    mlm_transform: bool = False                     # a dense transform before the decoder
    token_types: bool = False                       # a token type table (space `T`)
    pooling: bool = False                           # CompoundGrow's embedding pooling runs
    layer_prefix: str                               # "bert.encoder.layer.{i}."
    layer_tensors: tuple[Tensor, ...]
    global_tensors: tuple[Tensor, ...]
    optional: tuple[tuple[str, Axes], ...] = ()     # global tensors a bare checkpoint may
    #                                                 hold or not (BertModel's pooler)
    ffn_in: tuple[str, ...]                         # module suffixes producing F
    ffn_out: str                                    # module suffix consuming F
    residual_out: tuple[str, ...]                   # modules writing into the residual stream
    conv1d: bool = False                            # weights stored [in, out] (GPT-2 Conv1D)
    position_key: str | None = None                 # learned position table, if any
    base_prefix: str = ""                           # the base model's keys ("bert.")
    head_prefixes: tuple[str, ...] = ()             # keys of the LM head ("cls.", "lm_head.")
    fields: Mapping[str, Field] = field(default_factory=dict)   # beyond COMMON_FIELDS
    inert: tuple[Inert, ...] = ()                   # stored tensors the classes never read
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> config
    default_preset: str = ""                        # what the bare family name means
    paper: str = ""

    # ---- keys ----
    def layer_key(self, i: int, suffix: str) -> str:
        return self.layer_prefix.format(i=i) + suffix

    def is_head(self, key: str) -> bool:
        """True for a key of the language-model head (absent from a bare model)."""
        return key.startswith(self.head_prefixes)

    def split_layer_key(self, key: str) -> tuple[int, str] | None:
        """`(layer, suffix)` for a per-layer key, None for a global one."""
        head, _, _ = self.layer_prefix.partition("{i}")
        if not key.startswith(head):
            return None
        index, _, suffix = key[len(head):].partition(".")
        return (int(index), suffix) if index.isdigit() else None

    def inert_reason(self, key: str, head: bool) -> str | None:
        """Why canonical `key`, stored outside the weight map, may be left out (None: growdsl
        does not know it to be inert)."""
        return next((i.why for i in self.inert if i.covers(key, head)), None)

    # ---- config fields ----
    def field(self, name: str) -> Field | None:
        """What `name` does in this family's config, None when growdsl does not know it."""
        if name in self.hf_fields.values():
            return Field(effect=CARRIED, doc="a shape dimension")
        return self.fields.get(name) or COMMON_FIELDS.get(name)

    def shape_keys(self) -> tuple[str, ...]:
        """The config keys that hold shape dimensions."""
        return tuple(self.hf_fields.values())

    # ---- weight map ----
    def has(self, tensor: Tensor, tied: bool, settings: Mapping[str, Any]) -> bool:
        if tensor.when is None:
            return True
        if tensor.when == "untied":
            return not tied
        return bool(settings.get(tensor.when, False))

    def layer_axes(self, shape: Any) -> WeightMap:
        """Per-layer suffix -> axes for `shape` (unfactored)."""
        return self._axes(self.layer_tensors, shape)

    def global_axes(self, shape: Any) -> WeightMap:
        """Global key -> axes for `shape`."""
        return self._axes(self.global_tensors, shape)

    def _axes(self, tensors: tuple[Tensor, ...], shape: Any) -> WeightMap:
        tied_role = "i" if shape.tied else "o"
        return {t.key: tuple((space, tied_role if role == "t" else role) for space, role in t.axes)
                for t in tensors if self.has(t, shape.tied, shape.settings)}

    @property
    def ffn_bias(self) -> bool:
        """True when the FFN matrices always carry biases."""
        return any(t.key == f"{self.ffn_out}.bias" and t.when is None for t in self.layer_tensors)
