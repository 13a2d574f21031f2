"""The FLOP formula: the PaLM identity, the treatments, and monotonicity (no torch)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growdsl import families
from growdsl.flops import (
    ffn_weights,
    head_weights,
    submodel_depths,
    train_flops_per_sequence,
    train_flops_per_step,
    train_flops_per_token,
)
from growdsl.shapes import PRESETS, Shape


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    fam = draw(st.sampled_from(["bert", "gpt2", "llama"]))
    kv = draw(st.integers(1, 4))
    heads = kv * draw(st.integers(1, 4))
    head_dim = draw(st.sampled_from([8, 16, 64]))
    seq = draw(st.sampled_from([16, 64, 512]))
    return Shape(family=fam, layers=draw(st.integers(1, 24)), hidden=heads * head_dim,
                 heads=heads, kv_heads=kv if fam == "llama" else heads, head_dim=head_dim,
                 ffn=draw(st.integers(1, 64)) * 32, vocab=draw(st.integers(10, 50000)),
                 seq=seq, positions=seq, ffn_share=draw(st.sampled_from([1, 2, 4])),
                 ffn_rank=draw(st.sampled_from([0, 0, 4])), pool=draw(st.sampled_from([1, 2])),
                 submodels=draw(st.sampled_from([1, 1, 3])))


# (layers L, hidden D, heads H, kv heads K, head size Q, FFN F, vocab V, length T, FFN
# matrices) from the models' published configs, written out so that N is computed here
# and not by growdsl.flops.
PLAIN = {
    "gpt2": (12, 768, 12, 12, 64, 3072, 50257, 1024, 2),
    "llama-7b": (32, 4096, 32, 32, 128, 11008, 32000, 2048, 3),
    "tinyllama-1.1b": (22, 2048, 32, 4, 64, 5632, 32000, 2048, 3),
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_models_follow_6n_plus_12lhqt(name: str) -> None:
    layers, d, h, kv, q, f, v, t, mats = PLAIN[name]
    per_layer = d * h * q + 2 * d * kv * q + h * q * d + mats * d * f
    n = layers * per_layer + d * v                 # matmul weights, the LM head included
    want = 6 * n + 12 * layers * h * q * t
    assert train_flops_per_token(PRESETS[name]) == pytest.approx(want, rel=1e-12)


def test_bert_head_counts_only_masked_positions() -> None:
    s = PRESETS["bert-base"]
    full = train_flops_per_token(s, mlm_probability=1.0)
    masked = train_flops_per_token(s, mlm_probability=0.15)
    assert full - masked == 6 * head_weights(s) * 0.85


def test_treatments_reduce_cost() -> None:
    s = PRESETS["bert-base"]
    base = train_flops_per_token(s)
    assert train_flops_per_token(s.replace(ffn_share=4)) < base
    assert train_flops_per_token(s.replace(ffn_rank=64)) < base
    pooled = train_flops_per_token(s.replace(pool=2))
    assert base / 2 < pooled < base  # first layer's keys/values and the head stay full
    assert ffn_weights(s.replace(ffn_share=4)) * 4 == ffn_weights(s)


def test_submodel_stage_is_the_average() -> None:
    s = PRESETS["bert-base"].replace(submodels=3)
    assert submodel_depths(s) == [4, 8, 12]
    avg = sum(train_flops_per_sequence(s.replace(submodels=1, layers=d)) for d in (4, 8, 12)) / 3
    # the head is shared: every sub-model pays it once, as the full model does
    assert abs(train_flops_per_sequence(s) - avg) < 1e-6 * avg


@settings(max_examples=80, deadline=None)
@given(shape=shapes(), dim=st.sampled_from(["layers", "ffn", "vocab", "heads", "seq"]),
       batch=st.integers(1, 64), more=st.integers(1, 8))
def test_flops_are_monotone_in_steps_and_every_dimension(shape: Shape, dim: str, batch: int,
                                                         more: int) -> None:
    step = train_flops_per_step(shape, batch)
    assert step > 0
    assert train_flops_per_step(shape, batch + more) > step
    if dim == "heads":
        bigger = shape.replace(heads=shape.heads * 2, kv_heads=shape.kv_heads * 2,
                               hidden=shape.hidden * 2)
    elif dim == "seq":
        bigger = shape.replace(seq=shape.seq * 2)
    elif dim == "ffn":
        bigger = shape.replace(ffn=shape.ffn * 2)
    else:
        bigger = shape.replace(**{dim: getattr(shape, dim) + more})
    assert train_flops_per_step(bigger, batch) > step


def test_pooling_keeps_masked_positions_and_first_layer_keys() -> None:
    from growdsl.flops import layer_forward, pooled_length

    s = PRESETS["bert-base"].replace(pool=2)
    assert pooled_length(s, 512, 0.15) == 1 + 256 + 512 * 0.15
    assert pooled_length(s.replace(family="gpt2"), 512, 0.15) == 257
    assert pooled_length(s.replace(pool=1), 512, 0.15) == 512
    # the first layer reads keys/values at full length, later layers at the pooled one
    assert layer_forward(s, 512, True) > layer_forward(s, 512, False)


def test_stored_parameters_count_the_weight_map_without_listing_layers() -> None:
    """`param_count` multiplies one layer by the depth; it must equal the enumerated map
    (plain, shared and factorized FFNs, every preset)."""
    for shape in PRESETS.values():
        for variant in (shape, shape.replace(ffn_rank=8), shape.replace(ffn_share=2)):
            listed = sum(math.prod(d) for d in families.tensor_shapes(variant).values())
            assert families.stored_parameters(variant) == listed
